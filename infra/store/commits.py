"""After-commit callbacks on the application recorder: how the embedded runner hears of new events.

Every write of events ends in the recorder's `insert_events`, whichever path takes it
(`Application.save`, `EventStore.put`, the alert ingest's batch insert). The recorders of
infra/store call `committed()` once that transaction has committed, and so every callback the
composition root registered with `after_commit` (infra/bootstrap.py: the runner's `wake`).
Callbacks run in the committing thread, so they must be quick and thread-safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class SignalsCommits:
    """Mixin for an application recorder: calls the registered callbacks after each commit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._after_commit: list[Callable[[], None]] = []
        self.appended = 0  # events this process committed (linkage_events_appended_total)
        self._counting = threading.Lock()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` (no arguments) after every transaction of new events commits."""
        self._after_commit.append(callback)

    def committed(self, events: int = 0) -> None:
        """Tell every callback that new events (`events` of them) are committed."""
        if events:
            with self._counting:
                self.appended += events
        for callback in self._after_commit:
            try:
                callback()
            except Exception:  # the events are stored: a listener's failure must not undo a 2xx
                log.exception("after-commit callback %r failed", callback)
