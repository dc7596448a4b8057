"""Open supervision orders: a pure fold of the SupervisionOrder events.

Holds only the open orders (a fulfilled one leaves), by id, and an index of those not yet marked
overdue by deadline, so the watcher reads only the orders that are due. Its size is the number
of open orders, never the history. No clock: time comes from the events.
"""

from __future__ import annotations

from typing import Any

from sortedcontainers import SortedList

from projections.cases import utc_text
from projections.envelope import Envelope

Order = dict[str, Any]
AGGREGATE = "SupervisionOrder"


class OpenOrders:
    def __init__(self) -> None:
        self.by_id: dict[str, Order] = {}
        self._due: SortedList[tuple[str, str]] = SortedList()

    def __len__(self) -> int:
        return len(self.by_id)

    def apply(self, event: Envelope) -> None:
        """Fold one SupervisionOrder event (others are ignored)."""
        if event.aggregate != AGGREGATE:
            return
        data = event.data
        oid = event.originator_id
        order = self.by_id.get(oid)
        if event.name == "Issued":
            order = {
                "id": oid, "issuer": data.get("issuer"), "addressee": data.get("addressee"),
                "deadline": data.get("deadline"), "note": data.get("note"),
                "incident": data.get("incident"), "status": "issued", "overdue": False,
                "escalated_to": None, "issued_at": event.at, "updated_at": event.at,
                "version": event.originator_version,
            }
            self.by_id[oid] = order
            deadline = utc_text(order["deadline"])
            if deadline is not None:
                self._due.add((deadline, oid))
            return
        if order is None or event.originator_version <= order["version"]:
            return
        order = dict(order, version=event.originator_version, updated_at=event.at)
        if event.name == "Acknowledged":
            order["status"] = "acknowledged"
        elif event.name == "Overdue":
            order["overdue"] = True
            self._drop_due(order)
        elif event.name == "Escalated":
            order["escalated_to"] = data.get("to")
        elif event.name == "Fulfilled":
            self._drop_due(order)
            del self.by_id[oid]
            return
        self.by_id[oid] = order

    def _drop_due(self, order: Order) -> None:
        deadline = utc_text(order["deadline"])
        if deadline is not None:
            self._due.discard((deadline, order["id"]))

    def due(self, now: str, limit: int) -> list[Order]:
        """Up to `limit` open orders past their deadline and not yet marked overdue."""
        found: list[Order] = []
        for deadline, oid in self._due:
            if deadline > now or len(found) >= limit:
                break
            found.append(self.by_id[oid])
        return found

    def for_unit(self, unit: str, limit: int) -> list[Order]:
        """The open orders a center or department (`department:<id>`) issued, received or
        was escalated, earliest deadline first."""
        found = [o for o in self.by_id.values()
                 if unit in (o["issuer"], o["addressee"], o["escalated_to"])]
        found.sort(key=lambda o: (utc_text(o["deadline"]) or "", o["id"]))
        return found[:limit]
