"""The SLA watcher escalates overdue cases one level per grace period, read from the read model.

(The rule itself is domain/sla.py, tested in test_sla.py; here the timer at the edge.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.application import IncidentService
from infra.bootstrap import notification_reader
from infra.runner.embedded import EmbeddedRunner
from infra.runner.sla_watcher import SlaWatcher, overdue
from infra.store.view_store import MemoryViewStore

CENTERS = ["town", "district", "city"]
ACTOR = {"user": "u", "role": "admin", "center": None}
DUE = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def setup() -> tuple[IncidentService, EmbeddedRunner, str]:
    service = IncidentService(lambda grid: CENTERS, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    runner = EmbeddedRunner(notification_reader(service), MemoryViewStore(), CENTERS)
    incident = service.report(actor=ACTOR, grid="g", source="hotline", category="noise",
                              severity="routine", description="d", location=None, reporter=None)
    incident_id = str(incident.id)
    service.act(incident_id, "accept", actor=ACTOR)
    service.act(incident_id, "dispatch", actor=ACTOR, assignee={"kind": "department", "id": "x"},
                due=DUE.isoformat())
    runner.catch_up()
    return service, runner, incident_id


async def sweep(watcher: SlaWatcher, runner: EmbeddedRunner) -> int:
    """One sweep, then the runner folds what it saved (in a server, the commit wakes it)."""
    done = await watcher.sweep()
    runner.catch_up()
    return done


async def test_an_overdue_case_escalates_to_township_then_district_then_city() -> None:
    service, runner, incident_id = setup()
    now = [DUE - timedelta(minutes=1)]
    watcher = SlaWatcher(service, runner.store, "city", grace=timedelta(hours=1), clock=lambda: now[0])
    assert await sweep(watcher, runner) == 0
    now[0] = DUE + timedelta(minutes=1)
    assert await sweep(watcher, runner) == 1
    assert runner.view("city")["queue"][incident_id]["escalated_to"] == "township"
    assert await sweep(watcher, runner) == 0  # not again within the grace period
    now[0] = DUE + timedelta(hours=1, minutes=1)
    assert await sweep(watcher, runner) == 1
    assert runner.view("district")["queue"][incident_id]["escalated_to"] == "district"
    now[0] = DUE + timedelta(hours=5)
    assert await sweep(watcher, runner) == 1
    assert await sweep(watcher, runner) == 0  # at the city: nowhere higher
    assert service.get(incident_id).escalated_to == "city"
    timeline = service.timeline(incident_id)
    assert [e["data"].get("level") for e in timeline if e["type"] == "Escalated"] == [
        "township", "district", "city"]
    assert all(e["actor"]["user"] == "sla-watcher" for e in timeline if e["type"] == "Escalated")


async def test_a_resolved_case_is_never_escalated() -> None:
    service, runner, incident_id = setup()
    service.act(incident_id, "acknowledge", actor=ACTOR)
    service.act(incident_id, "resolve", actor=ACTOR, outcome="done")
    runner.catch_up()
    watcher = SlaWatcher(service, runner.store, "city", clock=lambda: DUE + timedelta(days=3))
    assert await watcher.sweep() == 0


def test_overdue_reads_due_times_with_a_z_suffix() -> None:
    item = {"status": "dispatched", "due": "2026-11-27T08:00:00Z", "escalations": 0}
    assert overdue(item, DUE + timedelta(seconds=1), timedelta(hours=1))
    assert not overdue(item, DUE - timedelta(seconds=1), timedelta(hours=1))
