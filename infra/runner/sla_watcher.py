"""The SLA watcher: escalates overdue cases up the tree (step 4, tracking and supervision).

The clock lives here, at the edge: the watcher reads the open cases whose due time has
passed from the per-incident read model (not a view: a view holds only its most urgent
cases), and for one whose due time passed more than `grace` × (escalations so far) ago,
it runs the `escalate` command as the system actor. The domain decides the level.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from command_center.incident_query import IncidentRows
from domain.application import IncidentService
from domain.incident import Actor, DomainError
from projections.cases import utc_text

log = logging.getLogger(__name__)

SYSTEM: Actor = {"user": "sla-watcher", "role": "system", "center": None}
WORKING = frozenset({"accepted", "dispatched", "returned", "acknowledged", "reopened"})


def overdue(item: dict[str, Any], now: datetime, grace: timedelta) -> bool:
    """Whether an open case (a read-model record) is due for its next escalation."""
    due = item.get("due")
    if not due or item.get("status") not in WORKING:
        return False
    escalations = int(item.get("escalations") or 0)
    if escalations >= 3:
        return False
    deadline = datetime.fromisoformat(due.replace("Z", "+00:00")) + grace * escalations
    return now > deadline


class SlaWatcher:
    def __init__(
        self,
        service: IncidentService,
        cases: IncidentRows,
        root_center: str,
        *,
        grace: timedelta = timedelta(hours=1),
        interval: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.service = service
        self.cases = cases
        self.root = root_center
        self.grace = grace
        self.interval = interval
        self.clock = clock
        self.wake = wake
        self.escalated = 0

    async def sweep(self) -> int:
        """Escalate every case now due for it; returns how many were escalated."""
        now = self.clock()
        candidates = await asyncio.to_thread(self.cases.overdue, utc_text(now.isoformat()) or "")
        due = [(item["id"], item.get("version")) for item in candidates
               if overdue(item, now, self.grace)]
        done = 0
        for incident_id, version in due:
            try:
                # The version the read model saw: if the case moved on since (another hub's watcher
                # escalated it, an officer resolved it), this is a conflict, not a second step.
                await asyncio.to_thread(
                    self.service.act, incident_id, "escalate", actor=SYSTEM, reason="overdue",
                    expected_version=version,
                )
                done += 1
            except DomainError as exc:  # changed meanwhile; the next sweep sees the new state
                log.info("not escalating %s: %s", incident_id, exc)
        if done:
            self.escalated += done
            self.wake()
        return done

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("SLA sweep failed; will retry")
