"""The console wire protocol without I/O: what a console is sent, decided from plain inputs.

As the `websockets` library keeps its protocol apart from its I/O, this module only decides:
the frames (snapshot, delta, pong, error), resume from history, resync on an epoch change or
a gap, overflow of a console's bounded queue, and when to close with which code. Drivers do
the I/O: `command_center/console.py` (the websocket), `command_center/hub.py` (in-process
fan-out), `infra/runner/embedded.py` and `infra/distributed/redis_fanout.py` (where frames
come from). docs/PROTOCOL.md is the specification.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from projections.patch import Change, View

CLOSE_UNSUPPORTED = 1003  # a binary frame: the protocol is JSON text
CLOSE_POLICY = 1008  # unknown center, message rate exceeded
CLOSE_TOO_BIG = 1009  # a client message over LINKAGE_WS_MAX_SIZE (closed by the server runtime)
CLOSE_PING_TIMEOUT = 1011  # no pong to a keepalive ping (closed by the server runtime)
CLOSE_TOO_SLOW = 4008  # fell behind too often, or a send did not complete in time
CLOSE_TOKEN_EXPIRED = 4401  # the console client treats 4401 as "log in again"
PING_TIMEOUT_REASON = "keepalive ping timeout"

PONG = '{"type":"pong"}'


class Frame(NamedTuple):
    """A delta frame for a center: its position and its encoded text.

    A frame whose text is "" is a marker: "the view is now at (epoch, seq)"; a console that is
    elsewhere takes a snapshot (used after a fan-out source reconnects).
    """

    epoch: str
    seq: int
    text: str


def delta_frame(center: str, epoch: str, seq: int, changes: list[Change]) -> str:
    return orjson.dumps(
        {"type": "delta", "center": center, "epoch": epoch, "seq": seq, "changes": changes}
    ).decode()


def snapshot_frame(center: str, epoch: str, seq: int, view: View) -> str:
    # Sorted keys: a view's encoding is canonical, so the same history gives the same bytes
    # in embedded and distributed mode, whatever order incidents entered a map in.
    return orjson.dumps(
        {"type": "snapshot", "center": center, "epoch": epoch, "seq": seq, "view": view},
        option=orjson.OPT_SORT_KEYS,
    ).decode()


def error_frame(detail: str) -> str:
    return orjson.dumps({"type": "error", "detail": detail}).decode()


def missed(current: tuple[str, int], epoch: str, seq: int,
           held: Iterable[Frame]) -> list[Frame] | None:
    """The deltas a console at (epoch, seq) missed, from `held` (frames in increasing seq);
    None when they are not all there: another epoch, a seq from the future, history trimmed."""
    if epoch != current[0] or seq > current[1]:
        return None
    frames = [frame for frame in held if frame.seq > seq]
    if [frame.seq for frame in frames] != list(range(seq + 1, current[1] + 1)):
        return None
    return frames


# -- client -> server messages ---------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """A fresh console: send a snapshot now."""


@dataclass(frozen=True)
class Resume:
    """A console that holds the view at (epoch, seq)."""

    epoch: str
    seq: int


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class SnapshotRequest:
    pass


@dataclass(frozen=True)
class Invalid:
    detail: str


ClientMessage = Hello | Resume | Ping | SnapshotRequest | Invalid
KINDS = "hello, resume, ping or snapshot"
_JSON_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


def parse(text: str) -> ClientMessage:
    """A client's text frame as a message; Invalid says what was wrong and what was expected."""
    try:
        data: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Invalid(f"expected a JSON object whose type is {KINDS}; got text that is not JSON")
    if not isinstance(data, dict):
        return Invalid(f"expected a JSON object whose type is {KINDS}; "
                       f"got a JSON {_JSON_NAMES.get(type(data), 'value')}")
    kind = data.get("type")
    if kind == "hello":
        return Hello()
    if kind == "ping":
        return Ping()
    if kind == "snapshot":
        return SnapshotRequest()
    if kind == "resume":
        epoch, seq = data.get("epoch"), data.get("seq")
        # bool is an int in Python, never a position.
        if isinstance(epoch, str) and isinstance(seq, int) and not isinstance(seq, bool) \
                and seq >= 0:
            return Resume(epoch, seq)
        # A resume without a usable position is answered like a hello: with a snapshot.
        return SnapshotRequest()
    if not isinstance(kind, str):  # never repr() a client's value: it may nest 1,000 deep
        return Invalid(f"expected a string type ({KINDS}); "
                       f"got a JSON {_JSON_NAMES.get(type(kind), 'object')}")
    return Invalid(f"unknown message type {kind[:64]!r}; expected {KINDS}")


# -- what the driver does next ----------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    text: str


@dataclass(frozen=True)
class TakeSnapshot:
    """Read the center's (epoch, seq, view) and hand it to `Console.snapshot` at once."""


@dataclass(frozen=True)
class Close:
    code: int
    reason: str  # sent in the close frame
    cause: str  # the `reason` label of linkage_console_closed_total


Step = Send | TakeSnapshot | Close
CAUSES = ("too_slow", "send_timeout", "ping_timeout", "rate_limit", "token_expired", "too_big",
          "binary_frame")


class Console:
    """One console connection: what it was sent (epoch, seq) and what it must be sent next.

    Inputs: `offer` (a frame from the fan-out; never blocks), `start` and `resumed` (the first
    message and the history it asked for), `receive` (a later client message), `snapshot` (the
    snapshot the driver took when asked), `send_timed_out`, `close`, `disconnected`.
    Output: `next_step()`, one Send, TakeSnapshot or Close at a time, or None when idle.
    """

    def __init__(self, center: str, queue_size: int = 512, max_overflows: int = 3,
                 send_timeout: float = 10.0) -> None:
        self.center = center
        self.queue_size = queue_size
        self.max_overflows = max_overflows
        self.send_timeout = send_timeout
        self.epoch = ""
        self.seq = -1
        self.resyncs = 0
        self.dropped = 0  # frames from the fan-out never sent (a full queue, or closing)
        self.overflowed = False
        self.started = False
        self._pending: deque[Frame] = deque()  # live frames from the fan-out, bounded
        self._backlog: deque[Frame] = deque()  # history a resume asked for, sent first
        self._replies: deque[str] = deque()
        self._wants_snapshot = False
        self._closing: Close | None = None

    # -- inputs ---------------------------------------------------------------------------------

    def offer(self, frame: Frame) -> None:
        """A frame from the fan-out. A console whose queue is full is marked overflowed and
        its queue dropped: it gets a snapshot instead, or is closed if it keeps falling behind."""
        if self.overflowed or self._closing is not None:
            self.dropped += 1
            return
        if len(self._pending) >= self.queue_size:
            self.overflowed = True
            self.dropped += len(self._pending) + 1
            self._pending.clear()
            return
        self._pending.append(frame)

    def send_now(self, frame: Frame) -> bool:
        """Whether `frame` is the very next thing to send, with nothing queued or due before it;
        if so it counts as sent (the driver writes it at once) and False means: `offer` it."""
        if self._closing is not None or not self.started or self.overflowed \
                or self._wants_snapshot or self._replies or self._backlog or self._pending:
            return False
        if not frame.text or frame.epoch != self.epoch or frame.seq != self.seq + 1:
            return False  # a marker, a resync or a repeat: the queue's rules decide
        self.seq = frame.seq
        return True

    def start(self, first: ClientMessage | None) -> Resume | None:
        """The first message (None: none came in time). Returns the Resume whose history the
        driver fetches and hands to `resumed`; otherwise a snapshot is due."""
        self.started = True
        if isinstance(first, Resume):
            return first
        self._wants_snapshot = True
        if first is not None:
            self.receive(first)
        return None

    def resumed(self, resume: Resume, frames: list[Frame] | None) -> None:
        """The deltas after the resume position (None: not all held, so a snapshot is due)."""
        if frames is None:
            self._wants_snapshot = True
            return
        self.epoch, self.seq = resume.epoch, resume.seq
        self._backlog.extend(frames)

    def receive(self, message: ClientMessage) -> None:
        """A client message after the first."""
        if isinstance(message, Ping):
            self._reply(PONG)
        elif isinstance(message, (Resume, SnapshotRequest, Hello)):
            self._wants_snapshot = True
        else:
            self._reply(error_frame(message.detail))

    def _reply(self, text: str) -> None:
        # A console that asks faster than it reads the answers falls behind like any other.
        if len(self._replies) >= self.queue_size:
            self.overflowed = True
            self._replies.clear()
        elif not self.overflowed:
            self._replies.append(text)

    def snapshot(self, epoch: str, seq: int, view: View) -> str:
        """The snapshot taken after TakeSnapshot; returns its frame, to send now."""
        self.epoch, self.seq = epoch, seq
        # Encode now: the view may be live and change after this point.
        return snapshot_frame(self.center, epoch, seq, view)

    def close(self, code: int, reason: str, cause: str) -> None:
        """Close at the next step (rate limit, token expiry: decided by the driver's clock)."""
        if self._closing is None:
            self._closing = Close(code, reason, cause)

    def send_timed_out(self) -> Close:
        """A send did not complete within `send_timeout`: the console is not reading."""
        self._closing = Close(CLOSE_TOO_SLOW, f"too slow: a send took over {self.send_timeout:g} s",
                              "send_timeout")
        return self._closing

    @staticmethod
    def disconnected(code: int, reason: str) -> str | None:
        """The cause label when the server runtime closed the socket, else None (the client)."""
        if code == CLOSE_PING_TIMEOUT and reason == PING_TIMEOUT_REASON:
            return "ping_timeout"
        if code == CLOSE_TOO_BIG:
            return "too_big"
        return None

    # -- output ---------------------------------------------------------------------------------

    def next_step(self) -> Step | None:
        if self._closing is not None:
            return self._closing
        if not self.started:
            return None
        if self.overflowed:
            self.overflowed = False
            self.resyncs += 1
            if self.resyncs > self.max_overflows:
                self.close(CLOSE_TOO_SLOW, "too slow: fell behind too many times", "too_slow")
                return self._closing
            self._wants_snapshot = True
        if self._wants_snapshot:
            # Frames queued so far are covered by the snapshot about to be taken; later ones
            # at or below its seq are skipped by `_decide`.
            self._wants_snapshot = False
            self._pending.clear()
            self._backlog.clear()
            return TakeSnapshot()
        if self._replies:  # after a due snapshot: the first frame a console gets is a snapshot
            return Send(self._replies.popleft())
        while self._backlog or self._pending:
            frame = (self._backlog or self._pending).popleft()
            step = self._decide(frame)
            if step is not None:
                return step
        return None

    def _decide(self, frame: Frame) -> Step | None:
        if not frame.text:  # a marker
            if (frame.epoch, frame.seq) == (self.epoch, self.seq):
                return None
            return self._resync()
        if frame.epoch != self.epoch:
            return self._resync()  # a client never mixes epochs
        if frame.seq <= self.seq:
            return None  # already covered by the snapshot or the history
        if frame.seq != self.seq + 1:
            return self._resync()  # a gap: never skip silently
        self.seq = frame.seq
        return Send(frame.text)

    def _resync(self) -> TakeSnapshot:
        self._pending.clear()
        self._backlog.clear()
        return TakeSnapshot()

    @property
    def pending(self) -> tuple[Frame, ...]:
        """The live frames queued for this console (at most `queue_size`)."""
        return tuple(self._pending)


class Cursor:
    """What a fan-out source has handed its hub, per center: drops repeats; after the source
    reconnects, says what to hand on (the missed frames, or a marker that forces a resync)."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[str, int]] = {}

    def accept(self, center: str, frame: Frame) -> bool:
        last = self.last.get(center)
        if last is not None and last[0] == frame.epoch and frame.seq <= last[1]:
            return False
        self.last[center] = (frame.epoch, frame.seq)
        return True

    def caught_up(self, center: str, frames: list[Frame] | None,
                  state: tuple[str, int] | None) -> list[Frame]:
        """What to hand on after reading what was missed since `last[center]`: `frames` when
        the source holds them all, else a marker at the source's `state` (epoch "" : nothing)."""
        if frames is not None:
            return [frame for frame in frames if self.accept(center, frame)]
        if state is None or not state[0]:
            return []
        self.last[center] = state
        return [Frame(state[0], state[1], "")]
