"""Saving an aggregate from the event loop: its events are mapped on the loop and committed by
the group commit's writer thread (infra/store/group_commit.py), which wakes the loop once per
batch. A request awaits its own commit without a worker thread of its own: no thread hop per
request, and no thread per request waiting for the commit lock.

What `Application.save` does, less what our applications do not use: it refuses an application
with snapshotting, and calls no `notify`/`_notify` hook (both are empty in eventsourcing's
`Application`, and ours override neither).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from infra.store.group_commit import GroupCommits, Part


def _settle(parts: list[Part]) -> None:
    """On the loop: each waiting future gets its part's outcome."""
    for part in parts:
        future: asyncio.Future[None] = part.waiter
        if future.done():  # its request was cancelled; the commit stands regardless
            continue
        if part.error is not None:
            future.set_exception(part.error)
        else:
            future.set_result(None)


class LoopSaver:
    """`await saver(aggregate)`: its pending events committed; else `conflict(aggregate)` is
    raised when another command took one of its versions first (IntegrityError without
    `conflict`), or the error that failed its batch."""

    def __init__(self, app: Application[Any],
                 conflict: Callable[[Any], Exception] | None = None) -> None:
        recorder = app.recorder
        if not isinstance(recorder, GroupCommits):
            raise TypeError(f"saving from the loop needs a group-commit recorder; "
                            f"got {type(recorder).__name__}")
        if app.snapshots is not None:
            raise TypeError("saving from the loop takes no snapshots; expected an application "
                            "without snapshotting")
        self.recorder: GroupCommits = recorder
        self.mapper = app.events.mapper
        self.conflict = conflict
        self._notify: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = \
            weakref.WeakKeyDictionary()

    def _notifier(self, loop: asyncio.AbstractEventLoop) -> Any:
        notify = self._notify.get(loop)
        if notify is None:
            def notify(parts: list[Part]) -> None:
                loop.call_soon_threadsafe(_settle, parts)

            self._notify[loop] = notify
        return notify

    async def __call__(self, *aggregates: Any) -> None:
        to_stored = self.mapper.to_stored_event
        stored = [to_stored(event) for aggregate in aggregates
                  for event in aggregate.collect_events()]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.recorder.submit(stored, self._notifier(loop), future)
        try:
            # A cancelled request does not cancel its commit: shield the future from the task.
            await asyncio.shield(future)
        except IntegrityError:
            if self.conflict is None or len(aggregates) != 1:
                raise
            raise self.conflict(aggregates[0]) from None
