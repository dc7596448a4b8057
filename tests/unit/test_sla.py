"""The SLA rule (domain/sla.py): which case is overdue, to which level it escalates, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.incident import Actor, Incident, Status
from domain.sla import Escalation, next_escalation, overdue

DUE = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
GRACE = timedelta(hours=1)
OFFICER: Actor = {"user": "officer-1", "role": "township_officer", "center": "130706001"}
SYSTEM: Actor = {"user": "sla-watcher", "role": "system", "center": None}

# Written out here rather than taken from the domain: the statuses in which a case is worked.
WORKED = ("accepted", "dispatched", "returned", "acknowledged", "reopened")


def test_a_case_escalates_to_the_township_once_its_deadline_has_passed() -> None:
    assert overdue(Status.DISPATCHED, DUE, 0, GRACE, DUE - timedelta(seconds=1)) is None
    assert overdue(Status.DISPATCHED, DUE, 0, GRACE, DUE) is None  # due, not yet overdue
    assert overdue(Status.DISPATCHED, DUE, 0, GRACE, DUE + timedelta(seconds=1)) == Escalation(
        "township", DUE)


def test_each_escalation_waits_one_more_grace_period_and_climbs_one_level() -> None:
    steps = [next_escalation(Status.ACKNOWLEDGED, DUE, n, GRACE) for n in range(3)]
    assert steps == [Escalation("township", DUE), Escalation("district", DUE + GRACE),
                     Escalation("city", DUE + 2 * GRACE)]
    assert overdue(Status.ACKNOWLEDGED, DUE, 1, GRACE, DUE + GRACE / 2) is None
    assert overdue(Status.ACKNOWLEDGED, DUE, 1, GRACE, DUE + 2 * GRACE) == steps[1]


def test_a_case_at_the_city_has_nowhere_higher_to_go() -> None:
    assert next_escalation(Status.DISPATCHED, DUE, 3, GRACE) is None
    assert overdue(Status.DISPATCHED, DUE, 3, GRACE, DUE + timedelta(days=30)) is None


def test_a_case_without_a_deadline_never_escalates_by_itself() -> None:
    assert overdue(Status.ACCEPTED, None, 0, GRACE, DUE + timedelta(days=30)) is None


@pytest.mark.parametrize("status", list(Status), ids=[s.value for s in Status])
def test_only_a_case_being_worked_escalates(status: Status) -> None:
    late = overdue(status, DUE, 0, GRACE, DUE + timedelta(days=1))
    assert (late is not None) is (status.value in WORKED)


def new_incident() -> Incident:
    return Incident.report(source="hotline", category="noise", severity="routine",
                           grid="130706001001001", centers=["130706001", "130706", "130700"],
                           description="loud construction at night", actor=OFFICER)


def test_the_rule_names_the_level_the_aggregate_escalates_to_and_stops_where_it_stops() -> None:
    incident = new_incident()
    incident.accept(actor=OFFICER)
    incident.dispatch(actor=OFFICER, assignee={"kind": "department", "id": "water"},
                      due=DUE.isoformat())
    incident.collect_events()
    for _ in range(3):
        step = next_escalation(incident.status, DUE, incident.escalations, GRACE)
        assert step is not None and "escalate" in incident.allowed_actions()
        incident.escalate(actor=SYSTEM, reason="overdue")
        (escalated,) = incident.collect_events()
        assert escalated.level == step.level  # type: ignore[attr-defined]
    assert next_escalation(incident.status, DUE, incident.escalations, GRACE) is None
    assert "escalate" not in incident.allowed_actions()
