"""The in-process fan-out of delta frames to consoles: publishing never awaits a console.

Each console's protocol state (`command_center/protocol.py`) holds its own bounded queue and
decides what to do when it overflows; the hub offers it every frame of its center and wakes
its sender (`command_center/console.py`). The embedded runner and the Redis subscriber feed it.

A console whose sender is idle, whose queue is empty and whose connection can take a frame
without waiting (a `FrameWriter`, from the server runtime) is written to directly instead: the
frame is encoded for the wire once per publication and written to each such connection in one
pass, with no task woken and nothing awaited. Any other console gets the frame queued as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

from command_center.protocol import Console, Frame
from projections.patch import View


class ViewSource(Protocol):
    """Where a hub gets snapshots and missed deltas (embedded runner or Redis)."""

    def snapshot(self, center: str) -> tuple[str, int, View] | Awaitable[tuple[str, int, View]]: ...

    def history(
        self, center: str, epoch: str, seq: int
    ) -> list[Frame] | Awaitable[list[Frame] | None] | None: ...

    def has_center(self, center: str) -> bool: ...


FRAME_WRITER = "linkage.frame_writer"  # the ASGI scope extension that carries a FrameWriter


class FrameWriter(Protocol):
    """A console's connection, written to without awaiting (infra/runtime/server.py)."""

    def can_write(self) -> bool:
        """Whether a frame written now goes out without waiting (open, not paused)."""
        ...

    def write_text(self, text: str, encoded: dict[Hashable, bytes]) -> None:
        """Write one text frame; `encoded`: its wire bytes by encoding, shared by one publication."""
        ...

    def write_texts(self, frames: list[tuple[str, dict[Hashable, bytes]]]) -> None:
        """Write several text frames, in order, with one write to the connection."""
        ...


@dataclass(eq=False)
class Subscription:
    """A console on the hub: its protocol state, the event that wakes its sender, and, while
    that sender waits with nothing to send (`idle`), the connection to write to directly."""

    center: str
    console: Console
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    writer: FrameWriter | None = None
    idle: bool = False

    def offer(self, frame: Frame, encoded: dict[Hashable, bytes] | None = None) -> bool:
        """Hand the console a frame; True when it was written at once."""
        writer = self.writer
        if self.idle and writer is not None and writer.can_write() \
                and self.console.send_now(frame):
            writer.write_text(frame.text, {} if encoded is None else encoded)
            return True
        self.console.offer(frame)
        self.ready.set()
        return False

    def offer_all(self, frames: list[Frame], encoded: list[dict[Hashable, bytes]]) -> int:
        """Hand the console several frames of its center, in order: the leading ones it can take
        at once are written with one write to its connection, the rest queued. How many were
        written at once."""
        writer = self.writer
        direct: list[tuple[str, dict[Hashable, bytes]]] = []
        if self.idle and writer is not None and writer.can_write():
            for frame, wire in zip(frames, encoded, strict=True):
                if not self.console.send_now(frame):
                    break
                direct.append((frame.text, wire))
            if direct:
                writer.write_texts(direct)
        if len(direct) < len(frames):
            for frame in frames[len(direct):]:
                self.console.offer(frame)
            self.ready.set()
        return len(direct)


class Hub:
    """In-process fan-out of deltas to consoles."""

    def __init__(self, queue_size: int = 512) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = {}
        self.published = 0
        self.written = 0  # frames written to a console directly (the others went to its sender)
        self.on_written: Callable[[int], object] | None = None  # e.g. a metric's inc

    def subscribe(self, center: str, console: Console | None = None) -> Subscription:
        sub = Subscription(center, console or Console(center, self.queue_size))
        self._subs.setdefault(center, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.center)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.center]

    def publish_frame(self, center: str, frame: Frame) -> None:
        self.published += 1
        encoded: dict[Hashable, bytes] = {}
        written = 0
        for sub in self._subs.get(center, ()):
            written += sub.offer(frame, encoded)
        if written:
            self.written += written
            if self.on_written is not None:
                self.on_written(written)

    def publish_frames(self, frames: list[tuple[str, Frame]]) -> None:
        """A batch's frames, in order: each console gets those of its center with one write to
        its connection where it can take them at once (a syscall per console, not per frame)."""
        by_center: dict[str, list[Frame]] = {}
        for center, frame in frames:
            by_center.setdefault(center, []).append(frame)
        for center, mine in by_center.items():
            if len(mine) == 1:
                self.publish_frame(center, mine[0])
                continue
            self.published += len(mine)
            encoded: list[dict[Hashable, bytes]] = [{} for _ in mine]
            written = 0
            for sub in self._subs.get(center, ()):
                written += sub.offer_all(mine, encoded)
            if written:
                self.written += written
                if self.on_written is not None:
                    self.on_written(written)

    def centers(self) -> list[str]:
        """The centers at least one console watches."""
        return list(self._subs)

    def count(self, center: str | None = None) -> int:
        if center is None:
            return sum(len(s) for s in self._subs.values())
        return len(self._subs.get(center, ()))
