"""Supervision orders (督办单): issued -> ignored -> overdue -> escalated; issued -> fulfilled on
time; the open-order index the watcher reads. Virtual time: one clock for service and watcher."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from command_center.ledger import Ledger
from domain.application import IncidentService
from domain.incident import InvalidCommand
from domain.order_service import SupervisionOrders
from domain.supervision_order import OrderRefused
from infra.bootstrap import ledger_reader
from infra.runner.sla_watcher import SlaWatcher
from infra.store.incident_rows import MemoryRows

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
CITY, DISTRICT, TOWN = "city", "district", "town"
CHAINS = {TOWN: [TOWN, DISTRICT, CITY], DISTRICT: [DISTRICT, CITY], CITY: [CITY]}
OFFICER = {"user": "boss", "role": "district_officer", "center": DISTRICT}
TOWNSHIP = {"user": "t", "role": "township_officer", "center": TOWN}


class World:
    def __init__(self) -> None:
        self.now = T0
        self.service = IncidentService(lambda grid: CHAINS[TOWN],
                                       env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
                                       clock=lambda: self.now)
        self.orders = SupervisionOrders(self.service, lambda c: CHAINS[c])
        self.ledger = Ledger(ledger_reader(self.service))
        self.watcher = SlaWatcher(self.service, MemoryRows(), CITY, clock=lambda: self.now,
                                  orders=self.orders, ledger=self.ledger)

    def issue(self, hours: float = 4, addressee: str = TOWN) -> str:
        order = self.orders.issue(actor=OFFICER, issuer=DISTRICT, addressee=addressee,
                                  deadline=(self.now + timedelta(hours=hours)).isoformat(),
                                  note="clear the blocked drain")
        return str(order.id)

    def events(self, order_id: str) -> list[tuple[str, Any]]:
        order = self.orders.get(order_id)
        return [(type(e).__name__, getattr(e, "to", None))
                for e in self.service.events.get(order.id)]

    async def sweep_at(self, moment: datetime) -> int:
        self.now = moment
        await self.watcher.sweep()
        return self.watcher.orders_overdue


async def test_an_ignored_order_becomes_overdue_at_its_deadline_and_escalates_once() -> None:
    world = World()
    order_id = world.issue(hours=4)
    deadline = T0 + timedelta(hours=4)
    assert await world.sweep_at(deadline - timedelta(seconds=1)) == 0
    assert await world.sweep_at(deadline) == 1
    assert await world.sweep_at(deadline + timedelta(days=2)) == 1  # never a second time
    assert world.events(order_id) == [("Issued", None), ("Overdue", None), ("Escalated", CITY)]
    order = world.orders.get(order_id)
    assert order.overdue and order.escalated_to == CITY and CITY in order.centers
    # Overdue, not closed: the addressee may still fulfil it, late.
    world.orders.fulfil(order_id, actor=TOWNSHIP, what="drain cleared")
    assert world.orders.get(order_id).on_time is False
    world.ledger.catch_up()
    assert world.ledger.orders.for_unit(TOWN, 10) == []


async def test_an_order_fulfilled_on_time_never_becomes_overdue() -> None:
    world = World()
    order_id = world.issue(hours=4)
    world.now = T0 + timedelta(hours=1)
    world.orders.acknowledge(order_id, actor=TOWNSHIP)
    world.ledger.catch_up()
    (shown,) = world.ledger.orders.for_unit(TOWN, 10)
    assert shown["status"] == "acknowledged" and world.ledger.orders.for_unit(DISTRICT, 10)
    world.now = T0 + timedelta(hours=3)
    world.orders.fulfil(order_id, actor=TOWNSHIP, what="drain cleared")
    assert world.orders.get(order_id).on_time is True
    assert await world.sweep_at(T0 + timedelta(days=3)) == 0
    assert [name for name, _ in world.events(order_id)] == ["Issued", "Acknowledged",
                                                           "Fulfilled"]
    with pytest.raises(OrderRefused, match="fulfilled already"):
        world.orders.acknowledge(order_id, actor=TOWNSHIP)


def test_orders_go_down_the_tree_or_to_a_department_with_a_future_deadline() -> None:
    world = World()
    with pytest.raises(InvalidCommand, match="not below"):
        world.orders.issue(actor=OFFICER, issuer=TOWN, addressee=DISTRICT,
                           deadline=(T0 + timedelta(hours=1)).isoformat(), note="n")
    with pytest.raises(InvalidCommand, match="not in the future"):
        world.orders.issue(actor=OFFICER, issuer=DISTRICT, addressee=TOWN,
                           deadline=T0.isoformat(), note="n")
    with pytest.raises(InvalidCommand, match="department:<id>"):
        world.issue(addressee="department:")
    department = world.issue(addressee="department:water")
    assert world.orders.get(department).centers == [DISTRICT, CITY]


async def test_the_watcher_reads_only_orders_past_their_deadline() -> None:
    world = World()
    for hours in (1, 2, 3, 50, 60):
        world.issue(hours=hours)
    world.ledger.catch_up()
    assert len(world.ledger.orders.due("2026-11-24T03:30:00.000000Z", 100)) == 2
    assert await world.sweep_at(T0 + timedelta(hours=3)) == 3
    world.ledger.catch_up()
    assert world.ledger.orders.due("2026-11-24T03:30:00.000000Z", 100) == []


def test_order_events_pass_through_the_view_runner_and_change_no_view() -> None:
    from infra.bootstrap import notification_reader
    from infra.runner.embedded import EmbeddedRunner
    from infra.store.view_store import MemoryViewStore

    world = World()
    runner = EmbeddedRunner(notification_reader(world.service), MemoryViewStore(), [TOWN, DISTRICT, CITY])
    runner.catch_up()
    before = {c: dict(runner.view(c)["counts"]) for c in (TOWN, DISTRICT, CITY)}
    order_id = world.issue()
    world.orders.fulfil(order_id, actor=TOWNSHIP, what="done")
    runner.catch_up()
    assert {c: dict(runner.view(c)["counts"]) for c in (TOWN, DISTRICT, CITY)} == before
    assert runner.view(CITY)["recent"] == []
    world.ledger.catch_up()
    assert world.ledger.position == world.service.recorder.max_notification_id()
