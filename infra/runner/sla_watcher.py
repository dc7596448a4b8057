"""The SLA watcher: a timer that escalates overdue cases (step 4, tracking and supervision).

The clock lives here, at the edge: every `interval` the watcher reads the open cases whose due
time has passed from the per-incident read model (not a view: a view holds only its most urgent
cases), asks the domain's SLA rule (domain/sla.py) which are due for their next escalation now,
and runs the `escalate` command on each as the system actor. The rule decides when; the
aggregate decides the level.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from command_center.incident_query import IncidentRows
from domain import sla
from domain.application import IncidentService
from domain.incident import Actor, DomainError, Status
from projections.cases import utc_text

log = logging.getLogger(__name__)

SYSTEM: Actor = {"user": "sla-watcher", "role": "system", "center": None}


def overdue(item: dict[str, Any], now: datetime, grace: timedelta) -> bool:
    """Whether an open case (a read-model record) is due for its next escalation (its
    status, ISO 8601 due time and escalation count, read for the domain's rule)."""
    try:
        status = Status(str(item.get("status")))
    except ValueError:  # not an incident entry this rule knows
        return False
    due = item.get("due")
    deadline = datetime.fromisoformat(due) if due else None
    escalations = int(item.get("escalations") or 0)
    return sla.overdue(status, deadline, escalations, grace, now) is not None


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
    ) -> None:
        self.service = service
        self.cases = cases
        self.root = root_center
        self.grace = grace
        self.interval = interval
        self.clock = clock
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
        self.escalated += done
        return done

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("SLA sweep failed; will retry")
