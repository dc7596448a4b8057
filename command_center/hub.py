"""The in-process fan-out of delta frames to consoles: publishing never awaits a console.

Each console's protocol state (`command_center/protocol.py`) holds its own bounded queue and
decides what to do when it overflows; the hub offers it every frame of its center and wakes
its sender (`command_center/console.py`). The embedded runner and the Redis subscriber feed it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
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


@dataclass(eq=False)
class Subscription:
    """A console on the hub: its protocol state, and the event that wakes its sender."""

    center: str
    console: Console
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, frame: Frame) -> None:
        self.console.offer(frame)
        self.ready.set()


class Hub:
    """In-process fan-out of deltas to consoles."""

    def __init__(self, queue_size: int = 512) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = {}
        self.published = 0

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
        for sub in self._subs.get(center, ()):
            sub.offer(frame)

    def centers(self) -> list[str]:
        """The centers at least one console watches."""
        return list(self._subs)

    def count(self, center: str | None = None) -> int:
        if center is None:
            return sum(len(s) for s in self._subs.values())
        return len(self._subs.get(center, ()))
