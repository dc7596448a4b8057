"""Which stored events other systems are told of (pure): a major case reported, a case escalated
to the district or the city, a case escalated because it is overdue, an alert rule fired, and an
alert storm started (`StormWatch`: the storm rule of projections/storm.py, kept per camera and
grid window, its state stored with the deliverer's position). One more kind is no event: a
signed tree head of the audit log (`tree_head_signed`, read from the stored heads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from projections.envelope import Envelope
from projections.storm import THRESHOLDS, is_storm, keys_for, tumble

# Every signed tree head (docs/AUDIT-FORMAT.md), for a witness on another machine.
TREE_HEAD = "tree_head_signed"
KINDS = ("major_reported", "escalated_district", "escalated_city", "supervision_overdue",
         "rule_fired", "storm_started", TREE_HEAD)
# The stored events each kind is told from ("<Aggregate>.<Event>"): the deliverer reads only
# these, so alerts cost it nothing unless somebody subscribes to storms.
KIND_EVENTS: dict[str, tuple[str, ...]] = {
    "major_reported": ("Incident.Reported",),
    "escalated_district": ("Incident.Escalated",),
    "escalated_city": ("Incident.Escalated",),
    "supervision_overdue": ("Incident.Escalated",),
    "rule_fired": ("CameraAlert.RuleFired",),
    "storm_started": ("CameraAlert.Raised",),
    TREE_HEAD: (),  # read from the stored heads, not the log
}
# Windows whose start is this much older than the newest alert seen are forgotten.
KEEP_WINDOWS = 3 * max(size for _, size in THRESHOLDS)


@dataclass(frozen=True)
class Notice:
    """One event worth telling, with what a receiver needs to act on it."""

    notification_id: int
    kinds: frozenset[str]
    event: str  # "<Aggregate>.<Event>"
    subject: str  # the incident or alert id
    at: str  # when it happened (ISO 8601)
    centers: tuple[str, ...]
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def incident(self) -> str | None:
        return self.subject if self.event.startswith("Incident.") else self.facts.get("incident")


def classify(event: Envelope) -> Notice | None:
    """The notice an event gives, or None when no kind applies."""
    data = event.data
    kinds: set[str] = set()
    facts: dict[str, Any] = {}
    if event.type == "Incident.Reported" and data.get("severity") == "major":
        kinds.add("major_reported")
        facts = {k: data.get(k) for k in ("category", "severity", "grid", "description",
                                          "location", "source")}
    elif event.type == "Incident.Escalated":
        level = data.get("level")
        if level in ("district", "city"):
            kinds.add(f"escalated_{level}")
        if data.get("reason") == "overdue":
            kinds.add("supervision_overdue")
        facts = {"level": level, "center": data.get("center"), "reason": data.get("reason")}
    elif event.type == "CameraAlert.RuleFired":
        kinds.add("rule_fired")
        alert = data.get("alert") or {}
        facts = {"rule": data.get("rule"), "action": data.get("action"),
                 "reason": data.get("reason"), "priority": data.get("priority"),
                 "incident": data.get("incident"), "grid": alert.get("grid"),
                 "label": alert.get("label"), "camera": alert.get("camera")}
    if not kinds:
        return None
    return Notice(event.notification_id, frozenset(kinds), event.type, event.originator_id,
                  event.at, tuple(data.get("centers") or ()), facts)


class StormWatch:
    """Counts raised alerts in their tumbling windows per camera and per grid (alert time, not a
    clock) and gives one `storm_started` notice when a window reaches its storm threshold, as a
    center's view starts a storm. Its state is a small dict, saved and loaded by the caller."""

    def __init__(self, state: dict[str, list[Any]] | None = None) -> None:
        # storm key -> [window start, alerts counted, whether its storm was told]
        self.windows: dict[str, list[Any]] = dict(state or {})
        self.newest = max((w[0] for w in self.windows.values()), default=0)

    def state(self) -> dict[str, list[Any]]:
        """What to keep: the windows still current (older ones cannot count again)."""
        horizon = self.newest - KEEP_WINDOWS
        return {k: w for k, w in self.windows.items() if w[0] >= horizon}

    def observe(self, event: Envelope) -> Notice | None:
        if event.type != "CameraAlert.Raised":
            return None
        data = event.data
        at = data.get("start_time")
        if not isinstance(at, (int, float)) or isinstance(at, bool):
            return None
        started: list[tuple[str, str, str, int, int, int]] = []
        for key, kind, ident, size, _ in keys_for(data.get("camera"), data.get("grid")):
            window = self.windows.get(key)
            current = (window[0], window[1]) if window else None
            (start, count), counted = tumble(current, float(at), size)
            if not counted:
                continue  # late: a window already past
            told = bool(window and window[0] == start and window[2])
            if is_storm(kind, size, count) and not told:
                started.append((key, kind, ident, size, start, count))
                told = True
            self.windows[key] = [start, count, told]
            self.newest = max(self.newest, start)
        if not started:
            return None
        key, kind, ident, size, start, count = started[0]  # one notice for the event
        return Notice(event.notification_id, frozenset({"storm_started"}), event.type,
                      f"{key}@{start}", event.at, tuple(data.get("centers") or ()),
                      {"storm": kind, "id": ident, "window": size, "window_start": start,
                       "threshold": THRESHOLDS[(kind, size)], "count": count,
                       "storms": [f"{k}@{s}" for k, _, _, _, s, _ in started],
                       "grid": data.get("grid"), "camera": data.get("camera"),
                       "label": data.get("label")})
