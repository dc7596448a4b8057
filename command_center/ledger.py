"""The step-4 ledger: the assessment and the open supervision orders, folded in this process
from the event store's notification log (both modes: SQLite or PostgreSQL), caught up on demand.

The folds are pure (projections/assessment.py, projections/orders.py); this holds them, a lock,
and the position. Reading the log writes nothing, so a GET that catches up stays read-only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from projections.assessment import Assessment
from projections.envelope import SKIP, Envelope
from projections.orders import OpenOrders

# (after notification id, limit) -> the envelopes after it, in order
ReadAfter = Callable[[int, int], list[Envelope]]
BATCH = 2000


class Ledger:
    def __init__(self, read: ReadAfter, assessment: Assessment | None = None) -> None:
        self.read = read
        self.assessment = assessment or Assessment()
        self.orders = OpenOrders()
        self.position = 0
        self.lock = threading.RLock()

    def catch_up(self) -> int:
        """Fold every notification after the position; returns how many events were folded
        (a reader's skip markers are not events)."""
        folded = 0
        with self.lock:
            while True:
                batch = self.read(self.position, BATCH)
                if not batch:
                    return folded
                for event in batch:
                    self.assessment.apply(event)
                    self.orders.apply(event)
                self.position = batch[-1].notification_id
                folded += sum(event.type != SKIP for event in batch)
