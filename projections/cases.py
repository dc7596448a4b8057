"""One incident as a record: a pure fold of its own events.

The record is the per-incident read model's row (`GET /api/incidents`), the entry the
urgency queue shows, and the entry a center's open-case index keeps. It depends only on
the incident's events, in their version order, so any interleaving with other incidents
gives the same records. No clock: time comes from the events.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from domain.incident import STEP_AFTER
from projections.envelope import Envelope

Case = dict[str, Any]

SUMMARY_CHARS = 80

STATUSES = (
    "reported",
    "accepted",
    "rejected",
    "duplicate",
    "dispatched",
    "returned",
    "acknowledged",
    "resolved",
    "visited",
    "reopened",
    "closed",
)
TERMINAL = frozenset({"rejected", "duplicate", "closed"})
# Statuses in which a case is being worked: only there does a due time make it urgent (a
# resolved case waits for its return visit, not for its deadline).
WORKING = frozenset({"accepted", "dispatched", "returned", "acknowledged", "reopened"})
SEVERITY_RANK = {"major": "0", "routine": "1"}

# Event name -> the status it leaves the incident in (None: status unchanged).
NEXT_STATUS: dict[str, str | None] = {
    "Reported": "reported",
    "Accepted": "accepted",
    "Rejected": "rejected",
    "MarkedDuplicate": "duplicate",
    "Dispatched": "dispatched",
    "Returned": "returned",
    "Transferred": "dispatched",
    "Acknowledged": "acknowledged",
    "ProgressReported": None,
    "Resolved": "resolved",
    "ReturnVisited": "visited",
    "Reopened": "reopened",
    "Closed": "closed",
    "Supervised": None,
    "Escalated": None,
    "ReopenedAutomatically": "dispatched",
    "VisitAttempted": None,
}
# The top of the escalation ladder: a case there has no next rung to be due.
TOP_LEVEL = "city"


def utc_text(text: Any) -> str | None:
    """An ISO 8601 time as fixed-width UTC text (sorts as it compares); None if it is none."""
    if not isinstance(text, str) or not text:
        return None
    return _utc_text(text)


@functools.lru_cache(maxsize=8192)
def _utc_text(text: str) -> str | None:
    # Cached: a fold computes each open case's urgency at every one of its events, from the
    # same few times (report, due).
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def urgency(case: Case) -> str:
    """The queue's sort key, as far as the order can go without a clock: major before routine;
    then, within each, four bands, each in ascending time:

    0. overdue as the SLA watcher recorded it (escalated while being worked), by due time;
    1. not accepted yet (reported), by report time: the longest waiting first;
    2. being worked with a due time, by due time: the nearest deadline first;
    3. any other open case (worked without a due time, resolved awaiting its return visit,
       visited), by report time.

    A case whose deadline passed but that has not escalated yet stays in band 2 here: only a
    clock can tell, and the console (which has one) moves it up. Ties go by id, which the
    index appends. docs/PROTOCOL.md (§3, "Urgency") states the same rule."""
    status = case.get("status")
    due = utc_text(case.get("due")) if status in WORKING else None
    reported = utc_text(case.get("reported_at")) or ""
    if due is not None and case.get("escalations"):
        band, when = "0", due
    elif status == "reported":
        band, when = "1", reported
    elif due is not None:
        band, when = "2", due
    else:
        band, when = "3", reported
    return f"{SEVERITY_RANK.get(str(case.get('severity')), '1')}{band}{when}"


def is_open(case: Case) -> bool:
    return case["status"] not in TERMINAL


def _assignee_text(assignee: Any) -> str | None:
    if isinstance(assignee, dict):
        return f"{assignee.get('kind', '')}:{assignee.get('id', '')}"
    return None


def case_after(case: Case | None, event: Envelope) -> Case | None:
    """The incident's record after one of its events (a new dict; `case` is not changed).

    None for an event of an incident without a record that is not its report. An event at or
    below the record's version was applied already and gives the record back unchanged."""
    name = event.name
    if name not in NEXT_STATUS:
        return case
    data = event.data
    if case is None:
        if name != "Reported":
            return None
        new: Case = {
            "id": event.originator_id,
            "centers": event.centers,
            "grid": data.get("grid"),
            "status": "reported",
            "severity": data.get("severity"),
            "category": data.get("category"),
            "source": data.get("source"),
            "assignee": None,
            "due": None,
            "reported_at": event.at,
            "updated_at": event.at,
            "summary": str(data.get("description", ""))[:SUMMARY_CHARS],
            "version": event.originator_version,
            "escalations": 0,
            "escalated_to": None,
            "supervised_by": None,
            # The step being timed, when it is due, and when the watcher next escalates it
            # (the deadline index: the next rung of the ladder for this step's breach).
            "step": "accept",
            "step_due": data.get("step_due"),
            "escalate_at": data.get("step_due"),
        }
        new["urgency"] = urgency(new)
        return new
    if event.originator_version <= case["version"]:
        return case
    new = dict(case)
    new["status"] = NEXT_STATUS[name] or case["status"]
    new["updated_at"] = event.at
    new["version"] = event.originator_version
    if "assignee" in data or name in ("Returned", "Reopened"):
        new["assignee"] = _assignee_text(data.get("assignee"))
    if "due" in data or name in ("Returned", "Reopened"):
        new["due"] = data.get("due")
    if name in STEP_AFTER:
        new["step"] = STEP_AFTER[name]
        step_due = data.get("step_due")
        if step_due is None and new["step"] in ("acknowledge", "resolve"):
            step_due = new.get("due")  # an event from before the SLA policy: the dispatch's due
        new["step_due"] = step_due if new["step"] else None
        new["escalate_at"] = new["step_due"] if case.get("escalated_to") != TOP_LEVEL else None
    if name == "Escalated":
        new["escalations"] = case.get("escalations", 0) + 1
        new["escalated_to"] = data.get("level")
        if data.get("level") == TOP_LEVEL:
            new["escalate_at"] = None
        elif data.get("step") is not None:
            new["escalate_at"] = data.get("next_at")
    elif name == "Supervised":
        new["supervised_by"] = data.get("by_center")
    new["urgency"] = urgency(new)
    return new
