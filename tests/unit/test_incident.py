"""Every legal and illegal transition of the Incident aggregate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from domain.incident import (
    ALLOWED,
    Actor,
    IllegalTransition,
    Incident,
    InvalidCommand,
    Status,
)

OFFICER: Actor = {"user": "officer-1", "role": "township_officer", "center": "130706001"}
DEPT: Actor = {"user": "handler-1", "role": "department", "center": None}
ASSIGNEE = {"kind": "department", "id": "urban_management"}
OTHER = {"kind": "department", "id": "housing"}
DUE = "2026-12-01T08:00:00+00:00"

# action -> how to call it with valid arguments
CALLS: dict[str, Callable[[Incident], None]] = {
    "accept": lambda i: i.accept(actor=OFFICER),
    "reject": lambda i: i.reject(actor=OFFICER, reason="out of scope"),
    "mark_duplicate": lambda i: i.mark_duplicate(actor=OFFICER, of="00000000-0000-0000-0000-000000000001"),
    "dispatch": lambda i: i.dispatch(actor=OFFICER, assignee=ASSIGNEE, due=DUE),
    "return": lambda i: i.return_(actor=DEPT, reason="not ours"),
    "transfer": lambda i: i.transfer(actor=OFFICER, assignee=OTHER, reason="wrong department"),
    "acknowledge": lambda i: i.acknowledge(actor=DEPT),
    "progress": lambda i: i.progress(actor=DEPT, note="on site"),
    "resolve": lambda i: i.resolve(actor=DEPT, outcome="fixed"),
    "return_visit": lambda i: i.return_visit(actor=OFFICER, satisfaction=4),
    "visit_attempt": lambda i: i.visit_attempt(actor=OFFICER, at="2026-11-27T08:00:00+00:00"),
    "reopen": lambda i: i.reopen(actor=OFFICER, reason="not fixed"),
    "close": lambda i: i.close(actor=OFFICER),
}

# A path of actions that reaches each status from a fresh report.
PATHS: dict[Status, list[str]] = {
    Status.REPORTED: [],
    Status.ACCEPTED: ["accept"],
    Status.REJECTED: ["reject"],
    Status.DUPLICATE: ["mark_duplicate"],
    Status.DISPATCHED: ["accept", "dispatch"],
    Status.RETURNED: ["accept", "dispatch", "return"],
    Status.ACKNOWLEDGED: ["accept", "dispatch", "acknowledge"],
    Status.RESOLVED: ["accept", "dispatch", "acknowledge", "resolve"],
    Status.VISITED: ["accept", "dispatch", "acknowledge", "resolve", "return_visit"],
    Status.REOPENED: ["accept", "dispatch", "acknowledge", "resolve", "return_visit", "reopen"],
    Status.CLOSED: ["accept", "dispatch", "acknowledge", "resolve", "return_visit", "close"],
}

EXPECTED_AFTER: dict[str, Status | None] = {
    "accept": Status.ACCEPTED,
    "reject": Status.REJECTED,
    "mark_duplicate": Status.DUPLICATE,
    "dispatch": Status.DISPATCHED,
    "return": Status.RETURNED,
    "transfer": Status.DISPATCHED,
    "acknowledge": Status.ACKNOWLEDGED,
    "progress": None,  # unchanged
    "resolve": Status.RESOLVED,
    "return_visit": Status.VISITED,
    "visit_attempt": None,  # unchanged
    "reopen": Status.REOPENED,
    "close": Status.CLOSED,
}


def new_incident(**overrides: Any) -> Incident:
    fields: dict[str, Any] = {
        "source": "hotline",
        "category": "noise",
        "severity": "routine",
        "grid": "130706001001001",
        "centers": ["130706001", "130706", "130700"],
        "description": "loud construction at night",
        "actor": OFFICER,
    }
    fields.update(overrides)
    return Incident.report(**fields)


def at(status: Status) -> Incident:
    incident = new_incident()
    for action in PATHS[status]:
        CALLS[action](incident)
    assert incident.status is status
    return incident


def test_a_report_starts_in_reported_and_records_who_and_when() -> None:
    incident = new_incident()
    events = incident.collect_events()
    assert incident.status is Status.REPORTED
    assert type(events[0]).__name__ == "Reported"
    assert events[0].actor == OFFICER  # type: ignore[attr-defined]
    assert events[0].timestamp is not None  # type: ignore[attr-defined]


LEGAL = [(status, action) for status, actions in ALLOWED.items() for action in actions]
ILLEGAL = [
    (status, action)
    for status in Status
    for action in CALLS
    if action not in ALLOWED[status]
]


@pytest.mark.parametrize(("status", "action"), LEGAL, ids=[f"{s.value}-{a}" for s, a in LEGAL])
def test_every_allowed_action_moves_to_its_status_and_records_the_actor(
    status: Status, action: str
) -> None:
    incident = at(status)
    incident.collect_events()
    CALLS[action](incident)
    expected = EXPECTED_AFTER[action] or status
    assert incident.status is expected
    (recorded,) = incident.collect_events()
    assert recorded.actor["user"] in ("officer-1", "handler-1")  # type: ignore[attr-defined]
    assert recorded.centers == ["130706001", "130706", "130700"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("status", "action"), ILLEGAL, ids=[f"{s.value}-{a}" for s, a in ILLEGAL])
def test_every_other_action_is_refused_naming_status_and_allowed_actions(
    status: Status, action: str
) -> None:
    incident = at(status)
    incident.collect_events()
    with pytest.raises(IllegalTransition) as refused:
        CALLS[action](incident)
    message = str(refused.value)
    assert repr(status.value) in message
    assert "allowed actions:" in message
    for allowed in ALLOWED[status]:
        assert allowed.replace("_", "-") in message
    assert incident.status is status
    assert incident.collect_events() == []


def test_a_dissatisfied_resident_reopens_the_case_to_the_same_assignee_at_once() -> None:
    incident = at(Status.RESOLVED)
    incident.collect_events()
    incident.return_visit(actor=OFFICER, satisfaction=2, comment="still broken")
    _visited, reopened = incident.collect_events()
    assert type(reopened).__name__ == "ReopenedAutomatically"
    assert reopened.reason == "still broken"  # type: ignore[attr-defined]
    assert reopened.assignee == ASSIGNEE  # type: ignore[attr-defined]
    assert incident.status is Status.DISPATCHED and incident.assignee == ASSIGNEE
    assert incident.reopen_count == 1
    with pytest.raises(IllegalTransition, match="'dispatched'"):
        incident.close(actor=OFFICER)
    incident.acknowledge(actor=DEPT)
    assert incident.status is Status.ACKNOWLEDGED


@pytest.mark.parametrize("satisfaction", [0, 6, -1])
def test_satisfaction_outside_one_to_five_is_refused(satisfaction: int) -> None:
    incident = at(Status.RESOLVED)
    with pytest.raises(InvalidCommand, match="1 to 5"):
        incident.return_visit(actor=OFFICER, satisfaction=satisfaction)


def test_transfer_needs_a_different_assignee() -> None:
    incident = at(Status.DISPATCHED)
    with pytest.raises(InvalidCommand, match="different assignee"):
        incident.transfer(actor=OFFICER, assignee=ASSIGNEE)


def test_an_incident_cannot_duplicate_itself() -> None:
    incident = new_incident()
    with pytest.raises(InvalidCommand, match="itself"):
        incident.mark_duplicate(actor=OFFICER, of=str(incident.id))


def test_unknown_severity_is_refused() -> None:
    with pytest.raises(InvalidCommand, match="severity"):
        new_incident(severity="catastrophic")


def test_state_is_rebuilt_from_events_identically() -> None:
    incident = at(Status.VISITED)
    events = incident.collect_events()
    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    assert rebuilt.as_dict() == incident.as_dict()


# -- step 4: supervision and escalation ---------------------------------------

SUPERVISABLE_STATUSES = [Status.ACCEPTED, Status.DISPATCHED, Status.RETURNED,
                         Status.ACKNOWLEDGED, Status.REOPENED]


@pytest.mark.parametrize("status", SUPERVISABLE_STATUSES, ids=lambda s: s.value)
def test_a_working_case_can_be_supervised_and_escalated(status: Status) -> None:
    incident = at(status)
    incident.supervise(actor=OFFICER, note="请加快办理", by_center="130706")
    incident.escalate(actor=OFFICER, reason="overdue")
    assert incident.status is status
    assert incident.supervised_by == "130706"
    assert incident.escalated_to == "township"


@pytest.mark.parametrize(
    "status", [s for s in Status if s not in SUPERVISABLE_STATUSES], ids=lambda s: s.value
)
def test_a_case_not_being_worked_cannot_be_supervised_or_escalated(status: Status) -> None:
    incident = at(status)
    with pytest.raises(IllegalTransition):
        incident.supervise(actor=OFFICER, note="n", by_center="130706")
    with pytest.raises(IllegalTransition):
        incident.escalate(actor=OFFICER, reason="overdue")


def test_escalation_climbs_township_district_city_then_stops() -> None:
    incident = at(Status.DISPATCHED)
    levels = []
    for _ in range(3):
        incident.escalate(actor=OFFICER, reason="overdue")
        levels.append(incident.escalated_to)
    assert levels == ["township", "district", "city"]
    assert "escalate" not in incident.allowed_actions()
    with pytest.raises(IllegalTransition, match="escalate"):
        incident.escalate(actor=OFFICER, reason="overdue")


def test_a_major_hazard_goes_to_the_township_at_once() -> None:
    incident = new_incident(severity="major")
    events = incident.collect_events()
    assert [type(e).__name__ for e in events] == ["Reported", "Escalated"]
    assert events[1].center == "130706001"  # type: ignore[attr-defined]
    assert incident.escalated_to == "township"


def test_only_a_center_of_the_case_can_supervise_it() -> None:
    incident = at(Status.DISPATCHED)
    with pytest.raises(InvalidCommand, match="130709"):
        incident.supervise(actor=OFFICER, note="n", by_center="130709")
