"""The projection runner in a process of its own (`LINKAGE_RUNNER_PROCESS`, on by default for
`linkage serve`).

In the server's process the runner's fold (reading, decoding and routing every event, and its
view-store commits) shares the GIL with the HTTP loop: during a burst of alerts it was about half of
what held the GIL while an officer's command waited (BENCHMARKS.md, #17 eighth pass). Here a child
process (spawned, supervised by `infra/runtime/child_process.ChildProcess`) runs the very same
`EmbeddedRunner` over the event store and the view store, and the server keeps a `RunnerMirror`:
the views, their seqs and the recent delta frames the consoles read, brought up to date from the
frames the child sends back after each committed batch. The server applies a batch's changes
(`projections.patch.apply_changes`), which is a small part of folding it.

The wire, one orjson message per `send_bytes` on a duplex pipe:

- child → server, once at each start, after the runner restored its committed state:
  `{"hello": epoch, "p": position, "seqs": {center: seq}}`. The server reads any delta it missed
  from the view store (a child killed between its commit and its send), or, for another epoch (the
  child rebuilt the views), reloads the views and tells the consoles with a marker frame.
- child → server, after each committed batch: `B`, the length of a header (4 bytes, big-endian),
  the header `{"e": epoch, "p": position, "f": [[center, seq, length], ...]}`, then each delta
  frame's text (what the consoles get) as UTF-8, one after another: the texts are not escaped into
  the header, so the server parses each once. A frame that skips a seq is preceded by the missed
  deltas, read from the view store; a batch of another epoch reloads the views first.
- server → child: an empty message (a wake) when this process commits events, so the runner reads
  the log at once rather than at its next poll. One wake is outstanding at most: commits until the
  child answers it (with anything) only mark another as due.
- server → child: `a` (an ack) once a batch's frames are published on the loop. The child sends
  its next batch only after the ack (or after `POLL` without one), so while the server is busy the
  events that arrive fold into one larger batch.
- child → server: `I` when a wake found nothing new to fold (it answers the wake).

A child whose batch fails sends nothing of it, restores its committed state and says hello again;
a message the server cannot apply makes it reload the views from the view store before the next.

The start-up catch-up still runs in the server before it listens (`build_embedded`), so the
server's first views are the runner's; the child starts from what that catch-up committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from typing import Any, cast

import orjson

from command_center.hub import Hub
from command_center.protocol import Frame, delta_frame
from infra.runner.embedded import EmbeddedRunner, HeldViews, stored_views
from infra.runtime.child_process import ChildProcess, stopping
from infra.settings import Settings
from infra.store.view_store import ViewStore
from projections.center_view import new_view
from projections.patch import View, apply_changes

log = logging.getLogger(__name__)

POLL = 1.0  # seconds: the child reads the log at least this often (commits elsewhere, no wake)
TICK = 0.1  # seconds: how often a waiting child checks whether it should stop
WAKE = b""  # server -> child: events were committed
ACK = b"a"  # server -> child: a batch's frames were published
IDLE = b"I"  # child -> server: woken, it found nothing new (answers the wake)
# Batches sent and not yet published by the server at most: while the server's loop is busy
# (writing to many consoles) the child folds what arrives meanwhile as one larger batch, so
# fewer, larger deltas reach the consoles instead of a queue of small ones.
IN_FLIGHT = 1


class RunnerMirror(HeldViews):
    """The server's copy of what the runner child folds: a `ViewSource` for the hub and
    `GET /view`, and a `Follower` (its `position`) for /readyz and /metrics."""

    def __init__(self, store: ViewStore, hub: Hub | None, centers: Iterable[str], *,
                 epoch: str, position: int, views: dict[str, View], seqs: dict[str, int],
                 history: dict[str, deque[Frame]], history_size: int) -> None:
        self.store = store
        self.hub = hub
        self.centers = frozenset(centers)
        self.epoch = epoch
        self.position = position
        self.views = views
        self.seqs = seqs
        self.history_frames = history
        self.history_size = history_size
        self.child: ChildProcess | None = None
        self.batches = 0  # batches heard from a child
        self.filled = 0  # deltas read from the view store because a child's frames skipped them
        self.reloads = 0  # whole reloads (a child came back under another epoch)
        self._lock = threading.Lock()  # the state, against readers on the loop and the threads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: Connection | None = None
        self._wake = threading.Event()  # events were committed: the sender thread tells the child
        self._sending = threading.Lock()  # one message at a time down the pipe; its swaps
        self._sender: threading.Thread | None = None
        self._flags = threading.Lock()  # the two below
        self._wake_sent: float | None = None  # when the unanswered wake was sent
        self._wake_due = False  # commits since: a wake is due once the child answers
        self._stale = False  # a message failed to apply: reload before the next
        self._closed = False

    @classmethod
    def taking(cls, runner: EmbeddedRunner, hub: Hub | None) -> RunnerMirror:
        """The state of a runner that has caught up in this process, which is then left alone:
        its views are checkpointed for the child to start from, and it folds nothing more."""
        runner.checkpoint()
        return cls(runner.store, hub, runner.centers, epoch=runner.epoch,
                   position=runner.position, views=runner.views, seqs=runner.seqs,
                   history=runner.history_frames, history_size=runner.history_size)

    # -- ViewSource ----------------------------------------------------------------------------

    def has_center(self, center: str) -> bool:
        return center in self.centers

    def view(self, center: str) -> View:
        view = self.views.get(center)
        if view is None:
            view = self.views[center] = new_view(center)
            self.seqs.setdefault(center, 0)
        return view

    # -- the child -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the runner's child running (the server's background task)."""
        assert self.child is not None, "runner_process() gives the mirror its child"
        self._loop = asyncio.get_running_loop()
        try:
            await self.child.run()
        finally:
            self._closed = True
            self._wake.set()  # the wake thread ends

    def wake(self) -> None:
        """Events were committed: tell the child to read the log now. Any thread may call it;
        the message is sent by a thread of its own, so a commit never waits for the pipe. At
        most one wake is outstanding: until the child answers it (any message), later commits
        only note that another is due, sent once it answers. So the pipe never fills and no
        write to it blocks (an unanswered wake is sent again after `POLL`)."""
        with self._flags:
            now = time.monotonic()
            if self._wake_sent is not None and now - self._wake_sent < POLL:
                self._wake_due = True
                return
            self._wake_sent, self._wake_due = now, False
        self._wake.set()

    def _answered(self) -> None:
        """The child sent something: it has read every wake sent before it."""
        with self._flags:
            self._wake_sent = None
            due, self._wake_due = self._wake_due, False
        if due:
            self.wake()

    def _ack(self) -> None:
        """A batch's frames are published: the child may send the next (see `runner_main`).
        Sent from the thread that published: one batch is in flight at most, so one ack at most
        waits in the pipe beside one wake, and the write does not block."""
        self._send(ACK)

    def _send(self, message: bytes) -> None:
        with self._sending:
            conn = self._conn
            if conn is not None:
                try:
                    conn.send_bytes(message)
                except Exception:  # the child is gone (its successor's attach follows)
                    log.debug("runner pipe closed", exc_info=True)

    def attach(self, conn: Connection | None) -> None:
        """A new child's end of the pipe (None: no child runs). Called by the `ChildProcess`."""
        with self._sending:  # no send is half way down the pipe being closed
            old, self._conn = self._conn, conn
            if old is not None:
                with contextlib.suppress(OSError):
                    old.close()
        if conn is None:
            return
        threading.Thread(target=self._receive, args=(conn,), name="linkage-runner-receive",
                         daemon=True).start()
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_wakes, name="linkage-runner-wake",
                                            daemon=True)
            self._sender.start()
        with self._flags:
            self._wake_sent = None  # owed by the child that went
        self.wake()  # the new child reads what was committed while none ran

    def _send_wakes(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()  # a wake that lands after this is sent on the next turn
            if not self._closed:
                self._send(WAKE)

    def _receive(self, conn: Connection) -> None:
        while True:
            try:
                message = conn.recv_bytes()
            except (EOFError, OSError):  # the child ended (or we closed our end)
                return
            self._answered()
            try:
                self.receive(message)
            except Exception:  # a bad message must not end the mirror: the next reloads
                log.exception("runner message could not be applied; reloading the views")

    def receive(self, data: bytes) -> None:
        """Apply one message from the child, publish its frames on the loop and, for a batch,
        ack it. A message that fails to apply leaves the mirror stale: the next one reloads the
        views from the view store first (consoles get a snapshot)."""
        if data == IDLE:  # an answer to a wake, and nothing else
            return
        frames: list[tuple[str, Frame]] = []
        ack = True  # a batch's, unless this is a hello (or a message too broken to tell)
        try:
            message = decode_message(data)
            hello = "hello" in message
            ack = not hello
            with self._lock:
                try:
                    if self._stale or (not hello and message["e"] != self.epoch):
                        frames += self._reload()  # the child's commits are in the store
                    if hello:
                        frames += self._hello(message["hello"], message["seqs"])
                    else:
                        self.batches += 1
                        for center, seq, text in message["f"]:
                            frames += self._apply(center, seq, text)
                    self.position = max(self.position, message["p"])
                except Exception:
                    self._stale = True
                    raise
        finally:
            self._publish(frames, ack=ack)  # what was applied, and the ack the child waits for

    def _hello(self, epoch: str, seqs: dict[str, int]) -> list[tuple[str, Frame]]:
        if epoch != self.epoch:
            return self._reload()
        frames: list[tuple[str, Frame]] = []
        for center, seq in seqs.items():
            if seq > self.seqs.get(center, 0) and not self._fill(center, seq, frames):
                return self._reload()
        return frames

    def _apply(self, center: str, seq: int, text: bytes) -> list[tuple[str, Frame]]:
        frames: list[tuple[str, Frame]] = []
        have = self.seqs.get(center, 0)
        if seq <= have:
            return frames  # already here (filled from the store)
        if seq > have + 1 and not self._fill(center, seq - 1, frames):
            return self._reload()
        changes = orjson.loads(text)["changes"]
        apply_changes(self.view(center), changes)
        self.seqs[center] = seq
        frame = Frame(self.epoch, seq, text.decode())
        self._ring(center).append(frame)
        frames.append((center, frame))
        return frames

    def _fill(self, center: str, upto: int, frames: list[tuple[str, Frame]]) -> bool:
        """Read the deltas after this center's seq up to `upto` from the view store; whether
        they were all there (a child's commit reached the store, its message did not reach us)."""
        have = self.seqs.get(center, 0)
        deltas = self.store.deltas_after(center, have, upto - have)
        if [seq for seq, _ in deltas] != list(range(have + 1, upto + 1)):
            return False
        view = self.view(center)
        for seq, changes in deltas:
            apply_changes(view, changes)
            frame = Frame(self.epoch, seq, delta_frame(center, self.epoch, seq, changes))
            self._ring(center).append(frame)
            frames.append((center, frame))
        self.seqs[center] = upto
        self.filled += len(deltas)
        return True

    def _reload(self) -> list[tuple[str, Frame]]:
        """Everything from the view store (the child rebuilt the views under a new epoch, or
        what we missed is no longer held): a marker frame per center sends its consoles a
        snapshot."""
        loaded = self.store.load()
        self.epoch, self.position = loaded.epoch, loaded.position
        self.views, self.seqs, self.history_frames = stored_views(loaded, self.history_size)
        self.reloads += 1
        log.warning("runner views reloaded from the view store (epoch %s)", self.epoch)
        return [(center, Frame(self.epoch, seq, "")) for center, seq in self.seqs.items()]

    def _publish(self, frames: list[tuple[str, Frame]], ack: bool) -> None:
        """Hand the frames to the hub on the loop; then, for a batch, ack it to the child."""
        hub, loop = self.hub, self._loop
        if loop is None or hub is None or not frames:  # not serving (tests by hand), or no frame
            if hub is not None:
                hub.publish_frames(frames)
            if ack:
                self._ack()
            return

        def publish() -> None:
            try:
                hub.publish_frames(frames)
            finally:
                if ack:
                    self._ack()

        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to tell
            loop.call_soon_threadsafe(publish)


def encode_hello(epoch: str, position: int, seqs: dict[str, int]) -> bytes:
    return orjson.dumps({"hello": epoch, "p": position, "seqs": seqs})


def encode_batch(epoch: str, position: int, frames: list[tuple[str, Frame]]) -> bytes:
    texts = [frame.text.encode() for _, frame in frames]
    header = orjson.dumps({"e": epoch, "p": position, "f": [
        (center, frame.seq, len(text)) for (center, frame), text in zip(frames, texts, strict=True)]})
    return b"".join([b"B", len(header).to_bytes(4, "big"), header, *texts])


def decode_message(data: bytes) -> dict[str, Any]:
    """A hello as sent; a batch with each frame's text as bytes: `{"e", "p", "f": [(center,
    seq, text)]}`."""
    if data[:1] != b"B":
        return cast(dict[str, Any], orjson.loads(data))
    size = int.from_bytes(data[1:5], "big")
    header = orjson.loads(data[5:5 + size])
    frames, at = [], 5 + size
    for center, seq, length in header["f"]:
        frames.append((center, seq, data[at:at + length]))
        at += length
    header["f"] = frames
    return cast(dict[str, Any], header)


def runner_main(settings: Settings, parent: int, conn: Connection | None = None) -> None:
    """The child: follow the event log, fold it and commit the views as the in-process runner
    does, and send each committed batch's frames to the server."""
    from infra.loaders.jurisdiction import load_jurisdiction
    from infra.security.seal_process import child_store
    from infra.store.log_readers import build_view_store, notification_reader

    assert conn is not None, "the runner's child is always given its pipe"
    stopped = stopping(parent)
    with child_store(settings, "runner") as service, contextlib.closing(
            build_view_store(settings)) as store:
        centers = [unit.id for unit in load_jurisdiction(settings.jurisdiction).centers()]
        runner = EmbeddedRunner(notification_reader(service), store, centers,
                                history_size=settings.history_size,
                                queue_size=settings.view_queue_size)
        follow_for_server(runner, conn, stopped)


def follow_for_server(runner: EmbeddedRunner, conn: Connection,
                      stopped: Callable[[], bool]) -> None:
    """The child's loop (a function of its own for tests): a hello, then fold what the log has
    whenever woken (or every `POLL`), one batch in flight at a time, until stopped or the server
    closes the pipe. A batch that fails is not sent: the runner restores its committed state
    and says hello again. The views are checkpointed at a clean exit only."""
    pending: list[tuple[str, Frame]] = []
    runner.deliver_with(pending.extend)
    conn.send_bytes(encode_hello(runner.epoch, runner.position, runner.seqs))
    read_at, sent_at, in_flight, woken = 0.0, 0.0, 0, True

    def hear(timeout: float) -> None:  # what the server sent: wakes and acks
        nonlocal in_flight, woken
        if conn.poll(timeout):
            while conn.poll(0):
                if conn.recv_bytes() == ACK:
                    in_flight = max(0, in_flight - 1)
                else:
                    woken = True

    clean = False  # whether the runner's state is what it committed: checkpoint it at exit
    try:
        while not stopped():
            # Fold at once when woken and free to send; otherwise wait for a message.
            hear(0 if woken and in_flight < IN_FLIGHT else TICK)
            if in_flight >= IN_FLIGHT:
                if time.monotonic() - sent_at < POLL:
                    continue  # the server is still publishing: let events gather
                in_flight = 0  # no ack for a long while (a stalled loop): go on anyway
            if not woken and time.monotonic() - read_at < POLL:
                continue
            was_woken, woken, read_at = woken, False, time.monotonic()
            try:
                folded = runner.process_batch()
            except Exception:  # nothing of the batch was sent; its commit did not happen
                log.exception("projection batch failed; restoring and retrying")
                pending.clear()
                until = time.monotonic() + POLL
                while not stopped() and time.monotonic() < until:
                    time.sleep(TICK)
                if not runner.restore():  # the committed state; rebuilt if it no longer fits
                    runner.rebuild()
                conn.send_bytes(encode_hello(runner.epoch, runner.position, runner.seqs))
                woken = True
                continue
            if folded:
                conn.send_bytes(encode_batch(runner.epoch, runner.position, pending))
                pending.clear()
                in_flight, sent_at = in_flight + 1, time.monotonic()
                woken = True  # read again once acked: more may have come meanwhile
            elif was_woken:
                conn.send_bytes(IDLE)  # answers the wake: the server may send the next
        clean = True
    except (BrokenPipeError, EOFError, OSError):  # the server closed its end: it stops
        clean = True
    finally:
        if clean:
            runner.stop()  # checkpoints the views it changed
        log.info("runner process stops at position %d", runner.position)


def runner_process(settings: Settings, mirror: RunnerMirror) -> ChildProcess:
    """The server's side: one runner child, its frames applied to `mirror`."""
    mirror.child = ChildProcess("runner", runner_main, settings, forward=mirror, duplex=True)
    return mirror.child
