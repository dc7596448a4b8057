"""The embedded projection runner: follows the notification log in-process.

Each batch: read notifications after the saved position, fold them into the
centers (views and open cases), commit the deltas, the incident records (the
per-incident read model) and the new position in one view-store transaction,
then publish the deltas to the hub. A restart loads the views and the open cases
and continues after the committed position: nothing lost, nothing twice.

`run()` folds in a thread of its own, never on the server's event loop: a burst of alerts
would otherwise hold HTTP requests for the length of each batch (its read, fold and view-store
COMMIT). A lock keeps readers on the loop (`snapshot`, `history`) from seeing a batch half
folded; a snapshot is a copy taken under it. Frames reach the hub on the loop, in order, after
their batch is committed; a console whose snapshot already holds them skips them by seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import orjson

from command_center.hub import Hub
from command_center.protocol import Frame, delta_frame, missed
from infra.store.log_readers import ReadNotifications
from infra.store.view_store import Loaded, ViewStore
from projections.cases import Case
from projections.center_view import (
    QUEUE_SIZE,
    Center,
    fold_events,
    new_center,
    new_view,
    restored,
)
from projections.envelope import Envelope
from projections.patch import Change, View, apply_changes
from projections.queue import OpenCases

log = logging.getLogger(__name__)



def stored_views(loaded: Loaded, history_size: int,
                 ) -> tuple[dict[str, View], dict[str, int], dict[str, deque[Frame]]]:
    """A view store's views brought up to date: each center's view at its last checkpoint with
    the deltas after it applied, its seq, and its recent deltas as frames (for `history`)."""
    views = {c: v for c, (_, v) in loaded.views.items()}
    seqs = {c: s for c, (s, _) in loaded.views.items()}
    rings: dict[str, deque[Frame]] = {}
    for center, deltas in loaded.deltas.items():
        view = views.setdefault(center, new_view(center))
        seq = seqs.get(center, 0)
        ring = rings[center] = deque(maxlen=history_size)
        for delta_seq, changes in deltas:
            ring.append(Frame(loaded.epoch, delta_seq,
                              delta_frame(center, loaded.epoch, delta_seq, changes)))
            if delta_seq > seq:
                apply_changes(view, changes)
                seq = delta_seq
        seqs[center] = seq
    return views, seqs, rings


class HeldViews:
    """What consoles read of views held in memory (`ViewSource`: a snapshot, the deltas after a
    seq), under the holder's lock: the runner, or the server's mirror of its child's views."""

    epoch: str
    seqs: dict[str, int]
    history_frames: dict[str, deque[Frame]]
    history_size: int  # frames held per center
    _lock: threading.RLock | threading.Lock  # held by whoever changes the views

    def view(self, center: str) -> View:
        raise NotImplementedError

    def _ring(self, center: str) -> deque[Frame]:
        ring = self.history_frames.get(center)
        if ring is None:
            ring = self.history_frames[center] = deque(maxlen=self.history_size)
        return ring

    def snapshot(self, center: str) -> tuple[str, int, View]:
        """(epoch, seq, a copy of the view at seq): the views may change meanwhile."""
        with self._lock:
            view: View = orjson.loads(orjson.dumps(self.view(center)))
            return self.epoch, self.seqs.get(center, 0), view

    def history(self, center: str, epoch: str, seq: int) -> list[Frame] | None:
        """Every delta after seq, or None when they are not all held (other epoch, trimmed)."""
        with self._lock:
            current = (self.epoch, self.seqs.get(center, 0))
            return missed(current, epoch, seq, list(self.history_frames.get(center, ())))


class EmbeddedRunner(HeldViews):
    def __init__(
        self,
        read: ReadNotifications,
        store: ViewStore,
        centers: Iterable[str],
        hub: Hub | None = None,
        *,
        batch_size: int = 500,
        replay_batch_size: int = 5000,
        read_size: int = 500,
        checkpoint_every: float = 2.0,
        history_size: int = 1000,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.read = read
        self.store = store
        self.hub = hub
        self.batch_size = batch_size
        self.replay_batch_size = replay_batch_size
        self.read_size = read_size
        self.checkpoint_every = checkpoint_every
        self.history_size = history_size
        self.queue_size = queue_size
        self.centers = frozenset(centers)
        self.folds: dict[str, Center] = {}
        self.views: dict[str, View] = {}  # center -> its fold's view
        self.seqs: dict[str, int] = {}
        self.history_frames: dict[str, deque[Frame]] = {}
        self.epoch = ""
        self.position = 0
        self._dirty: set[str] = set()
        self._last_checkpoint = time.monotonic()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # the one run() follows on
        self._stopped = False
        self._rows: dict[str, Case] = {}  # incident records of the batch being folded
        # Held while a batch folds and commits, and by readers of the state (any thread).
        self._lock = threading.RLock()
        # How a batch's frames reach the hub: at once, or (under run()) on the loop.
        self._deliver: Callable[[list[tuple[str, Frame]]], None] = self._publish
        self._thread: ThreadPoolExecutor | None = None
        if not self.restore():
            log.warning("stored views do not match the stored open cases (another queue size, "
                        "or views from before the urgency queue): rebuilding them")
            self.rebuild()

    # -- state -------------------------------------------------------------

    def restore(self) -> bool:
        """Load the store's state; whether its views' queues are the ones its open cases give."""
        loaded = self.store.load()
        self.epoch = loaded.epoch
        self.position = loaded.position
        self._rows = {}
        self.views, self.seqs, self.history_frames = stored_views(loaded, self.history_size)
        cases: dict[str, list[Case]] = {}
        for case in loaded.cases:
            for center in case["centers"]:
                if center in self.centers:
                    cases.setdefault(center, []).append(case)
        self.folds = {}
        consistent = True
        for center in self.views.keys() | cases.keys():
            view = self.views.setdefault(center, new_view(center))
            stored = view.get("queue")
            fold = restored(view, OpenCases(cases.get(center, ())), self.queue_size)
            fold.rows = self._rows
            self.folds[center] = fold
            consistent = consistent and stored == view["queue"]
            self.seqs.setdefault(center, 0)
        return consistent

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Drop every view and fold the whole log again, under a new epoch.

        Nobody holds a view of the new epoch yet, so no delta is kept or published: each batch
        (`replay_batch_size` events, longer runs of alerts than live batches) commits the views
        it changed, its incident records and its position together, as a checkpoint does."""
        self.store.reset()
        self.restore()
        total = 0
        while True:
            with self._lock:
                done, _ = self._fold_batch(replay=True)
            if not done:
                break
            total += done
            if progress:
                progress(done)
        return total

    def fold(self, center: str) -> Center:
        fold = self.folds.get(center)
        if fold is None:
            fold = self.folds[center] = new_center(center, self.queue_size)
            fold.rows = self._rows
            self.views[center] = fold.view
            self.seqs[center] = 0
        return fold

    def view(self, center: str) -> View:
        return self.fold(center).view

    # -- ViewSource --------------------------------------------------------

    def has_center(self, center: str) -> bool:
        return center in self.centers

    # -- folding -----------------------------------------------------------

    def process_batch(self, checkpoint: bool = True) -> int:
        with self._lock:
            folded, frames = self._fold_batch(checkpoint=checkpoint)
        if frames:
            self._deliver(frames)
        return folded

    def deliver_with(self, deliver: Callable[[list[tuple[str, Frame]]], None]) -> None:
        """Hand each committed batch's frames to `deliver` instead of the hub (the runner's
        child process sends them to the server: infra/runner/runner_process.py)."""
        self._deliver = deliver

    def _publish(self, frames: list[tuple[str, Frame]]) -> None:
        if self.hub is not None:
            self.hub.publish_frames(frames)

    def _fold_batch(self, checkpoint: bool = False, replay: bool = False,
                    ) -> tuple[int, list[tuple[str, Frame]]]:
        """Fold and commit one batch: how many events it read, and the frames to publish
        (none when replaying: the batch commits the views it changed instead of its deltas)."""
        # Consecutive alert events for a center fold as one run into one delta: a burst of
        # alerts becomes a few frames, not one each. Every other event keeps a delta of its own.
        deltas: list[tuple[str, int, list[Change]]] = []

        def emit(center: str, changes: list[Change]) -> None:  # changes the fold applied
            seq = self.seqs[center] = self.seqs.get(center, 0) + 1
            deltas.append((center, seq, changes))
            self._dirty.add(center)

        read = [0, self.position]  # events read, the last one's notification id
        fold_events(self._read_batch(self.replay_batch_size if replay else self.batch_size, read),
                    lambda center: self.fold(center) if center in self.centers else None, emit)
        if not read[0]:
            return 0, []
        self.position = read[1]
        checkpointed = None
        if replay or (checkpoint
                      and time.monotonic() - self._last_checkpoint >= self.checkpoint_every):
            checkpointed = self._take_checkpoint()
        rows = list(self._rows.values())
        self._rows.clear()
        if replay:
            self.store.commit(self.position, [], checkpointed, rows)
            return read[0], []
        self.store.commit(self.position, deltas, checkpointed, rows)
        frames: list[tuple[str, Frame]] = []
        for center, seq, changes in deltas:
            frame = Frame(self.epoch, seq, delta_frame(center, self.epoch, seq, changes))
            self._ring(center).append(frame)
            frames.append((center, frame))
        return read[0], frames

    def _read_batch(self, limit: int, read: list[int]) -> Iterator[Envelope]:
        """A batch's events after the position, read `read_size` at a time: each piece is routed
        (its incident events folded) while its freshly decoded events are still in the CPU's
        caches, not after all of a replay's 5,000 are decoded. Ends where one read of the whole
        batch would: at `limit` events, or after a piece shorter than asked for. The batch, its
        runs and what it commits are the same."""
        position, left = self.position, limit
        while left > 0:
            asked = min(left, self.read_size)
            events = self.read(position, asked)
            if events:  # read: [events read so far, the last one's notification id]
                read[0] += len(events)
                read[1] = events[-1].notification_id
            yield from events
            if len(events) < asked:
                return
            left -= len(events)
            position = events[-1].notification_id

    def _take_checkpoint(self) -> dict[str, tuple[int, View]]:
        views = {c: (self.seqs[c], self.views[c]) for c in self._dirty}
        self._dirty = set()
        self._last_checkpoint = time.monotonic()
        return views

    def checkpoint(self) -> None:
        with self._lock:
            self.store.commit(self.position, [], self._take_checkpoint())

    def catch_up(self) -> int:
        total = 0
        while done := self.process_batch():
            total += done
        return total

    # -- running -----------------------------------------------------------

    def wake(self) -> None:
        """Read the log now, not at the next poll. Any thread may call it: the recorder signals
        each commit from the thread that committed (infra/store/commits.py)."""
        loop = self._loop
        if loop is None:  # not following yet: the flag makes run() read as soon as it starts
            self._wake.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to wake
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self, poll_interval: float = 1.0) -> None:
        """Follow the log until stopped: woken by commits, or polling as a fallback. Batches
        fold in the runner's own thread; their frames are published here, on the loop."""
        loop = self._loop = asyncio.get_running_loop()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linkage-runner")

        def deliver(frames: list[tuple[str, Frame]]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to tell
                loop.call_soon_threadsafe(self._publish, frames)

        self._deliver = deliver
        try:
            while not self._stopped:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll_interval)
                self._wake.clear()
                try:
                    await loop.run_in_executor(self._thread, self._drain)
                except Exception:  # keep following; the position was not advanced
                    log.exception("projection batch failed; retrying")
                    await asyncio.sleep(poll_interval)
                    await loop.run_in_executor(self._thread, self._restore_locked)
        finally:
            self._deliver = self._publish
            self._thread.shutdown(wait=True)

    def _drain(self) -> None:
        while not self._stopped and self.process_batch():
            pass

    def _restore_locked(self) -> None:
        with self._lock:
            self.restore()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        with self._lock:  # after the batch in flight, if any
            if self._dirty:
                self.checkpoint()
