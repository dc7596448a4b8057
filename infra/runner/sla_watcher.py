"""The SLA watcher: a timer that escalates overdue cases (step 4, tracking and supervision).

The clock lives here, at the edge, and is injectable. Every `interval` the watcher reads from the
deadline index (the read model's `escalate_at`, a projection of the events: when the current
step's breach next climbs a rung) only the cases due by now, at most `batch` of them, earliest
first, and runs the aggregate's `escalate_overdue` on each as the system actor. The aggregate
decides the rung and refuses one already taken (idempotent on incident, step, deadline and
rung), so a second watcher, or one restarted with a read model that lags, escalates nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from command_center.incident_query import IncidentRows
from command_center.ledger import Ledger
from domain import sla
from domain.application import IncidentService
from domain.incident import Actor, DomainError, Status
from domain.order_service import SupervisionOrders
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
        batch: int = 500,
        orders: SupervisionOrders | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.service = service
        self.cases = cases
        self.root = root_center
        # Between rungs, when the service has no SLA policy to say (its [escalation] every).
        self.grace = grace
        self.interval = interval
        self.clock = clock
        self.batch = batch
        self.escalated = 0
        # Supervision orders past their deadline: read from the ledger's open-order index.
        self.orders = orders
        self.ledger = ledger
        self.orders_overdue = 0

    def _every(self) -> timedelta:
        policy = self.service.policy
        return policy.escalate_every if policy is not None else self.grace

    async def sweep(self) -> int:
        """Escalate the cases whose next rung is due now (at most `batch` of them); returns how
        many were escalated."""
        now = self.clock()
        due = await asyncio.to_thread(self.cases.due, utc_text(now.isoformat()) or "", self.batch)
        done = 0
        for item in due:
            if not item.get("step") or not item.get("step_due"):
                continue
            try:
                await asyncio.to_thread(
                    self.service.escalate_overdue, item["id"], actor=SYSTEM, step=item["step"],
                    deadline=item["step_due"], now=now, every=self._every(),
                )
                done += 1
            except DomainError as exc:  # taken already, moved on, or not due: nothing to do
                log.info("not escalating %s: %s", item["id"], exc)
        self.escalated += done
        if self.orders is not None and self.ledger is not None:
            await self.sweep_orders(now)
        return done

    async def sweep_orders(self, now: datetime) -> int:
        """Mark overdue (and escalate) the open orders whose deadline has passed."""
        assert self.orders is not None and self.ledger is not None
        ledger = self.ledger

        def due() -> list[dict[str, Any]]:
            ledger.catch_up()
            with ledger.lock:
                return ledger.orders.due(utc_text(now.isoformat()) or "", self.batch)

        done = 0
        for order in await asyncio.to_thread(due):
            try:
                await asyncio.to_thread(self.orders.mark_overdue, order["id"], actor=SYSTEM,
                                        now=now)
                done += 1
            except DomainError as exc:  # fulfilled or marked meanwhile
                log.info("not marking order %s overdue: %s", order["id"], exc)
        self.orders_overdue += done
        return done

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("SLA sweep failed; will retry")
