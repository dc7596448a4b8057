"""The live view of one linkage center: a pure fold over incident events.

`changes_for(view, event)` says what an event changes in a view; `apply(view, event)`
applies it unless the view has already seen that notification. No clock, no I/O:
time comes from the event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from projections.alerts import alert_changes, fold_alerts, new_alert_view
from projections.envelope import Envelope
from projections.patch import Change, View, apply_changes, del_, push, set_

RECENT_LIMIT = 50
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
}

Handler = Callable[[View, Envelope], list[Change]]


def new_view(center: str) -> View:
    """An empty view for a center."""
    return {
        "center": center,
        "position": 0,
        "counts": dict.fromkeys(STATUSES, 0),
        "open": {},
        "grids": {},
        "recent": [],
        **new_alert_view(),
    }


def _assignee_text(assignee: Any) -> str | None:
    if isinstance(assignee, dict):
        return f"{assignee.get('kind', '')}:{assignee.get('id', '')}"
    return None


def _summary(event: Envelope) -> str:
    data = event.data
    for key in ("description", "reason", "outcome", "note", "comment"):
        text = data.get(key)
        if isinstance(text, str) and text:
            return text[:SUMMARY_CHARS]
    if "assignee" in data:
        return _assignee_text(data["assignee"]) or ""
    if "satisfaction" in data:
        return f"{data['satisfaction']}/5"
    if "of" in data:
        return f"duplicate of {data['of']}"
    return ""


def _actor(event: Envelope) -> str | None:
    actor = event.data.get("actor")
    return actor.get("user") if isinstance(actor, dict) else None


def _count(view: View, counts: dict[str, int], status: str, delta: int) -> Change:
    counts[status] = counts.get(status, view["counts"].get(status, 0)) + delta
    return set_(["counts", status], counts[status])


def incident_changes(view: View, event: Envelope) -> list[Change]:
    """What an incident event changes in a center's view."""
    incident_id = event.originator_id
    name = event.name
    if name not in NEXT_STATUS:
        return []
    changes: list[Change] = []
    counts: dict[str, int] = {}
    current = view["open"].get(incident_id)
    grid = current["grid"] if current else event.data.get("grid")
    new_status = NEXT_STATUS[name]

    if name == "Reported":
        if current is None:
            item = {
                "id": incident_id,
                "status": "reported",
                "category": event.data.get("category"),
                "severity": event.data.get("severity"),
                "grid": grid,
                "source": event.data.get("source"),
                "summary": str(event.data.get("description", ""))[:SUMMARY_CHARS],
                "reported_at": event.at,
                "updated_at": event.at,
                "due": None,
                "assignee": None,
                "version": event.originator_version,
                "escalations": 0,
                "escalated_to": None,
                "supervised_by": None,
            }
            changes.append(set_(["open", incident_id], item))
            changes.append(_count(view, counts, "reported", +1))
            if grid is not None:
                changes.append(set_(["grids", grid], view["grids"].get(grid, 0) + 1))
    elif current is not None:
        old_status = current["status"]
        status = new_status or old_status
        if status in TERMINAL:
            changes.append(del_(["open", incident_id]))
            if grid is not None:
                left = view["grids"].get(grid, 0) - 1
                changes.append(set_(["grids", grid], left) if left > 0 else del_(["grids", grid]))
        else:
            base = ["open", incident_id]
            changes.append(set_([*base, "status"], status))
            changes.append(set_([*base, "updated_at"], event.at))
            changes.append(set_([*base, "version"], event.originator_version))
            if "assignee" in event.data or name in ("Returned", "Reopened"):
                changes.append(set_([*base, "assignee"], _assignee_text(event.data.get("assignee"))))
            if "due" in event.data or name in ("Returned", "Reopened"):
                changes.append(set_([*base, "due"], event.data.get("due")))
            if name == "Escalated":
                changes.append(set_([*base, "escalations"], current.get("escalations", 0) + 1))
                changes.append(set_([*base, "escalated_to"], event.data.get("level")))
            elif name == "Supervised":
                changes.append(set_([*base, "supervised_by"], event.data.get("by_center")))
        if status != old_status:
            changes.append(_count(view, counts, old_status, -1))
            changes.append(_count(view, counts, status, +1))

    changes.append(
        push(
            ["recent"],
            {
                "n": event.notification_id,
                "at": event.at,
                "incident": incident_id,
                "type": name,
                "actor": _actor(event),
                "grid": grid,
                "summary": _summary(event),
            },
            RECENT_LIMIT,
        )
    )
    return changes


# Routing is data: aggregate name -> handler. Other aggregates register here.
ROUTES: dict[str, Handler] = {"Incident": incident_changes, "CameraAlert": alert_changes}
# Aggregates whose consecutive events may fold as one run: (view, events) -> changes, the same
# view as each event's ROUTES handler in turn gives.
RUNS: dict[str, Callable[[View, list[Envelope]], list[Change]]] = {"CameraAlert": fold_alerts}


def changes_for(view: View, event: Envelope) -> list[Change]:
    """The changes an event makes to a view (no duplicate check)."""
    handler = ROUTES.get(event.aggregate)
    if handler is None:
        return []
    changes = handler(view, event)
    if event.notification_id > view["position"]:
        changes.append(set_(["position"], event.notification_id))
    return changes


def step(view: View, event: Envelope) -> list[Change]:
    """The changes for an event the view has not applied yet; [] for one it has."""
    if event.notification_id <= view["position"]:
        return []
    return changes_for(view, event)


def step_run(view: View, events: list[Envelope]) -> list[Change]:
    """The changes for a run of events of one aggregate type in RUNS, skipping the ones the view
    has applied: what `step` of each in turn gives, in one op per touched key ([] for none)."""
    position = view["position"]
    fresh = []
    for event in events:
        if event.notification_id > position:
            fresh.append(event)
            position = event.notification_id
    if not fresh:
        return []
    changes = RUNS[fresh[0].aggregate](view, fresh)
    changes.append(set_(["position"], position))
    return changes


def apply(view: View, event: Envelope) -> View:
    """Fold one event into a view (in place); a notification already applied changes nothing."""
    return apply_changes(view, step(view, event))


def routes_to(event: Envelope) -> list[str]:
    """The centers whose views an event updates: its township, district and city."""
    return event.centers
