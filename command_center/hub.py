"""The console hub: fans deltas out to websocket consoles, one bounded queue per console.

Publishing never awaits a console. A console whose queue fills up is marked
`overflowed`; its sender drops what is queued and sends a fresh snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from projections.patch import Change, View

Frame = tuple[str, int, str]  # (epoch, seq, encoded delta frame: a JSON text)
# A frame whose text is "" is a marker: "the view is now at (epoch, seq)"; a console
# that is elsewhere fetches a snapshot (used after a fan-out source reconnects).


class ViewSource(Protocol):
    """Where a hub gets snapshots and missed deltas (embedded runner or Redis)."""

    def snapshot(self, center: str) -> tuple[str, int, View] | Awaitable[tuple[str, int, View]]: ...

    def history(
        self, center: str, epoch: str, seq: int
    ) -> list[Frame] | Awaitable[list[Frame] | None] | None: ...

    def has_center(self, center: str) -> bool: ...


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


@dataclass(eq=False)
class Subscription:
    center: str
    queue: asyncio.Queue[Frame]
    overflowed: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def offer(self, frame: Frame) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True

    def drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.overflowed = False


class Hub:
    """In-process fan-out of deltas to consoles."""

    def __init__(self, queue_size: int = 512) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = {}
        self.published = 0

    def subscribe(self, center: str) -> Subscription:
        sub = Subscription(center, asyncio.Queue(self.queue_size))
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

    def publish(self, center: str, epoch: str, seq: int, changes: list[Change]) -> str:
        data = delta_frame(center, epoch, seq, changes)
        self.publish_frame(center, (epoch, seq, data))
        return data

    def centers(self) -> list[str]:
        """The centers at least one console watches."""
        return list(self._subs)

    def count(self, center: str | None = None) -> int:
        if center is None:
            return sum(len(s) for s in self._subs.values())
        return len(self._subs.get(center, ()))
