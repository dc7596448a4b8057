"""The escalation ladder in virtual time: the SLA policy times every step, the deadline index
says which cases are due, the watcher climbs one rung per breach and never the same rung twice.

The service and the watchers share one injectable clock; the read model is the SQLite view store
the embedded runner writes (the same table and queries as in a server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from domain.application import IncidentService
from infra.bootstrap import notification_reader
from infra.loaders.sla_policy import parse_text
from infra.runner.embedded import EmbeddedRunner
from infra.runner.sla_watcher import SlaWatcher
from infra.store.view_store import SQLiteViewStore

CENTERS = ["town", "district", "city"]
OFFICER = {"user": "officer", "role": "admin", "center": None}
WORKER = {"kind": "grid_worker", "id": "w1"}
DEPT = {"kind": "department", "id": "roads"}
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # a Tuesday, 09:00 at +08:00
POLICY = parse_text("""
[default]
accept = "30m"
dispatch = "1h"
acknowledge = "2h"
resolve = "1d"
visit = "2d"

[[rule]]
category = "noise"
severity = "routine"
accept = "2h"
working_hours = true

[calendar]
utc_offset = "+08:00"
start = "08:30"
end = "17:30"

[escalation]
every = "1h"
""")
S = timedelta(seconds=1)


class World:
    """A service, its runner and read model, and the clock they share."""

    def __init__(self, tmp: Path, now: datetime = T0) -> None:
        self.now = now
        self.env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                    "SQLITE_DBNAME": str(tmp / "events.db"),
                    "APPLICATION_RECORDER_TOPIC":
                        "infra.store.sqlite_recorder:LinkageSQLiteRecorder"}
        self.service = self.new_service()
        self.runner = EmbeddedRunner(notification_reader(self.service),
                                     SQLiteViewStore(tmp / "views.db"), CENTERS)

    def new_service(self) -> IncidentService:
        return IncidentService(lambda grid: CENTERS, env=self.env, policy=POLICY,
                               clock=lambda: self.now, community_for=lambda grid: "community-1")

    def watcher(self, service: IncidentService | None = None) -> SlaWatcher:
        return SlaWatcher(service or self.service, self.runner.store, "city",
                          clock=lambda: self.now)

    def report(self, severity: str = "routine", category: str = "pothole") -> str:
        incident = self.service.report(actor=OFFICER, grid="g", source="hotline",
                                       category=category, severity=severity, description="d",
                                       location=None, reporter=None)
        self.runner.catch_up()
        return str(incident.id)

    def act(self, incident_id: str, action: str, **params: Any) -> None:
        self.service.act(incident_id, action, actor=OFFICER, **params)
        self.runner.catch_up()

    async def sweep_at(self, moment: datetime, watcher: SlaWatcher | None = None) -> int:
        self.now = moment
        done = await (watcher or self.watcher()).sweep()
        self.runner.catch_up()
        return done

    def escalations(self, incident_id: str) -> list[tuple[Any, ...]]:
        return [(e["data"]["level"], e["data"].get("center"), e["data"].get("step"),
                 e["data"].get("late"))
                for e in self.service.timeline(incident_id) if e["type"] == "Escalated"]


async def test_a_case_nobody_accepts_climbs_the_ladder_at_its_deadline_and_each_hour_after(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    case = world.report()
    accept_due = T0 + timedelta(minutes=30)
    assert world.service.get(case).step == "accept"
    assert world.service.get(case).step_due == accept_due.isoformat()
    assert await world.sweep_at(accept_due - S) == 0
    assert await world.sweep_at(accept_due) == 1
    assert await world.sweep_at(accept_due + timedelta(minutes=59, seconds=59)) == 0
    assert await world.sweep_at(accept_due + timedelta(hours=1)) == 1
    assert await world.sweep_at(accept_due + timedelta(hours=2)) == 1
    assert await world.sweep_at(accept_due + timedelta(days=5)) == 0  # the top: nowhere higher
    assert world.escalations(case) == [("township", "town", "accept", 0),
                                       ("district", "district", "accept", 3600),
                                       ("city", "city", "accept", 7200)]
    # At the top of the ladder the case leaves the deadline index: no sweep reads it again.
    assert world.runner.store.due("9999", 10) == []


async def test_each_ignored_step_escalates_at_its_own_deadline_from_the_handler_upward(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    case = world.report()
    world.now = T0 + timedelta(minutes=10)
    world.act(case, "accept")  # on time: the dispatch is now due within the hour
    dispatch_due = world.now + timedelta(hours=1)
    assert await world.sweep_at(dispatch_due - S) == 0
    world.now = dispatch_due - S
    world.act(case, "dispatch", assignee=WORKER)  # in time; the worker must acknowledge in 2 h
    ack_due = world.now + timedelta(hours=2)
    assert await world.sweep_at(ack_due - S) == 0
    # Held by a grid worker: the first rung is the grid's community, then the township.
    assert await world.sweep_at(ack_due) == 1
    assert await world.sweep_at(ack_due + timedelta(hours=1)) == 1
    world.act(case, "acknowledge")
    resolve_due = dispatch_due - S + timedelta(days=1)
    assert world.service.get(case).step_due == resolve_due.isoformat()
    assert await world.sweep_at(resolve_due - S) == 0
    assert await world.sweep_at(resolve_due + timedelta(minutes=5)) == 1  # a new breach: district
    world.act(case, "resolve", outcome="fixed")
    visit_due = world.now + timedelta(days=2)
    assert await world.sweep_at(visit_due) == 1  # the return visit is timed too: city
    assert [(level, step) for level, _, step, _ in world.escalations(case)] == [
        ("community", "acknowledge"), ("township", "acknowledge"), ("district", "resolve"),
        ("city", "visit")]
    assert world.escalations(case)[0][1] == "community-1"
    assert world.escalations(case)[2][3] == 300  # five minutes late


async def test_a_case_handled_on_time_never_escalates(tmp_path: Path) -> None:
    world = World(tmp_path)
    case = world.report()
    steps = [("accept", {}), ("dispatch", {"assignee": DEPT}), ("acknowledge", {}),
             ("resolve", {"outcome": "fixed"}), ("return-visit", {"satisfaction": 5}),
             ("close", {})]
    for action, params in steps:
        due = world.service.get(case).step_due
        assert (due is None) is (action == "close")  # a visited case waits for no deadline
        if due is not None:
            assert await world.sweep_at(datetime.fromisoformat(due) - S) == 0
        world.act(case, action, **params)
    assert world.service.get(case).step is None
    assert await world.sweep_at(T0 + timedelta(days=30)) == 0
    assert world.escalations(case) == []


async def test_a_major_case_reaches_the_township_at_once_and_climbs_on_from_there(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    case = world.report(severity="major")
    assert world.escalations(case) == [("township", "town", None, None)]
    assert await world.sweep_at(T0 + timedelta(minutes=30)) == 1
    assert world.escalations(case)[1][:3] == ("district", "district", "accept")


async def test_working_hours_move_a_friday_night_routine_case_to_monday(tmp_path: Path) -> None:
    friday_23h = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # 23:00 at +08:00
    world = World(tmp_path, now=friday_23h)
    case = world.report(category="noise")
    monday_due = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)  # Monday 08:30 +08:00, plus 2 h
    assert world.service.get(case).step_due == monday_due.isoformat()
    assert await world.sweep_at(friday_23h + timedelta(days=1)) == 0  # Saturday: nothing due
    assert await world.sweep_at(monday_due - S) == 0
    assert await world.sweep_at(monday_due) == 1


async def test_two_watchers_at_once_and_a_restarted_one_escalate_each_rung_once(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    cases = [world.report() for _ in range(5)]
    other = world.new_service()  # a second process on the same event store
    first, second = world.watcher(), world.watcher(other)
    world.now = T0 + timedelta(minutes=30)
    done = await asyncio.gather(first.sweep(), second.sweep())
    assert sum(done) == 5
    # Restarted before the runner folded the escalations: the read model still says due.
    restarted = world.watcher(world.new_service())
    assert len(world.runner.store.due("9999", 10)) == 5
    assert await restarted.sweep() == 0
    world.runner.catch_up()
    world.now = T0 + timedelta(minutes=90)
    done = await asyncio.gather(first.sweep(), second.sweep(), restarted.sweep())
    assert sum(done) == 5
    for case in cases:
        assert [level for level, *_ in world.escalations(case)] == ["township", "district"]


def test_a_case_dispatched_before_the_policy_is_timed_by_its_dispatch_due() -> None:
    """Events stored before issue #14 carry no step_due: the dispatch's due times the handler,
    in the aggregate and in the record the deadline index is made of."""
    from projections.cases import case_after
    from projections.envelope import Envelope

    due = "2026-11-27T08:00:00+00:00"
    legacy = [("Reported", {"grid": "g", "severity": "routine", "category": "noise",
                            "description": "d"}),
              ("Accepted", {"note": ""}),
              ("Dispatched", {"assignee": {"kind": "department", "id": "x"}, "due": due,
                              "note": ""}),
              ("Acknowledged", {})]
    case = None
    for version, (name, data) in enumerate(legacy, start=1):
        event = Envelope(version, "c1", version, f"Incident.{name}", "2026-11-26T08:00:00+00:00",
                         {**data, "centers": CENTERS, "actor": OFFICER})
        case = case_after(case, event)
        assert case is not None
    assert (case["step"], case["step_due"], case["escalate_at"]) == ("resolve", due, due)
