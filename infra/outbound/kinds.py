"""Which stored events other systems are told of (pure): a major case reported, a case escalated
to the district or the city, a case escalated because it is overdue, an alert rule fired."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from projections.envelope import Envelope

KINDS = ("major_reported", "escalated_district", "escalated_city", "supervision_overdue",
         "rule_fired")


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
