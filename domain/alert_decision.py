"""What a located batch of observations changes: new or changed alerts, rule firings, incidents.

Pure: it reads stored alerts through the `StoredAlerts` port and returns events; the store
(an `AlertStore` adapter) runs it inside its transaction and commits the events, in order.
Idempotency comes from the derived alert id: a redelivery finds the stored alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from domain.alert_rules import Rule, RuleSet
from domain.alert_store import Located, NewAlert, Outcome, StoredAlerts
from domain.camera_alert import CameraAlert, Observation, alert_id
from domain.incident import Actor, Incident


class Decision(NamedTuple):
    # In the order they happened (notification ids follow it): domain events, and NewAlert
    # for the Raised of a new alert no rule touched.
    events: list[Any]
    outcomes: list[Outcome]  # one per observation, in order


@dataclass
class _Facts:
    """The rule-relevant facts of an alert about to be raised (no aggregate built yet)."""

    label: str
    kind: str
    camera: str | None
    grid: str
    score: float | None
    top_score: float | None
    zones: list[str]
    plate: str | None
    false_positive: bool
    start_time: float
    last_seen: float
    rules_fired: list[str]

    @classmethod
    def of(cls, raised: dict[str, Any]) -> _Facts:
        """From the Raised event's fields (``CameraAlert.raised_fields``)."""
        start, end, seen = raised["start_time"], raised["end_time"], raised["seen_time"]
        times = [t for t in (start, end, seen) if t is not None]
        return cls(raised["label"], raised["kind"], raised["camera"], raised["grid"],
                   raised["score"], raised["top_score"], raised["zones"], raised["plate"],
                   raised["false_positive"], start, max(times), [])


def rule_actor(rule: Rule) -> Actor:
    return {"user": f"rule:{rule.name}", "role": "rule", "center": None}


class AlertDecider:
    """Decides the events of located batches under one set of rules."""

    def __init__(self, rules: RuleSet | None = None) -> None:
        self.rules = rules or RuleSet()

    def decide(
        self,
        feed: str,
        observations: Sequence[Observation],
        located: Located,
        actor: Actor,
        stored: StoredAlerts,
    ) -> Decision:
        ids = [alert_id(feed, obs.feed_event_id) for obs in observations]
        # Keyed by uuid.int below: an int hashes in C, a UUID in Python (~5 lookups an alert).
        existing = {uuid.int for uuid in stored.existing(set(ids))}
        alerts: dict[int, CameraAlert] = {}  # aggregates loaded or built in this batch
        # New alerts no rule touched (NewAlert): (index in the batch, Raised timestamp). No
        # event object or aggregate is built for them unless the batch touches them again.
        fresh: dict[int, tuple[int, datetime]] = {}
        events: list[Any] = []
        outcomes: list[Outcome] = []
        rules = self.rules.rules
        may_match, matching = self.rules.may_match, self.rules.matching
        now = CameraAlert.Raised.create_timestamp  # type: ignore[attr-defined]
        raised_fields = CameraAlert.raised_fields
        for index, (obs, uuid, (grid, centers)) in enumerate(
            zip(observations, ids, located, strict=True)
        ):
            key = uuid.int
            alert = alerts.get(key)
            if alert is None and key in fresh:
                first, timestamp = fresh.pop(key)
                fields = raised_fields(observations[first], feed=feed, grid=located[first][0],
                                       centers=located[first][1], actor=actor)
                raised = CameraAlert.raised_event_of(uuid, fields, timestamp)
                alert = alerts[key] = CameraAlert.from_raised(raised)
            if alert is None and key in existing:
                alert = alerts[key] = stored.load(uuid)
            if alert is None:
                fields = raised_fields(obs, feed=feed, grid=grid, centers=centers, actor=actor)
                timestamp = now()
                text_id = str(uuid)
                outcome = Outcome(text_id, "created")
                if may_match(fields["label"], fields["kind"]) and matching(_Facts.of(fields)):
                    raised = CameraAlert.raised_event_of(uuid, fields, timestamp)
                    events.append(raised)
                    alert = alerts[key] = CameraAlert.from_raised(raised)
                    events.extend(self._fire_rules(alert, outcome))
                else:
                    events.append(NewAlert(uuid, text_id, fields, timestamp))
                    fresh[key] = (index, timestamp)
                outcomes.append(outcome)
                continue
            outcome = Outcome(str(uuid), alert.observe(obs, actor=actor))
            if outcome.status != "duplicate":
                events.extend(alert.collect_events())
                if rules:
                    events.extend(self._fire_rules(alert, outcome))
            outcomes.append(outcome)
        return Decision(events, outcomes)

    def _fire_rules(self, alert: CameraAlert, outcome: Outcome) -> list[Any]:
        """Fire the rules the alert now matches; their events (incidents first), in order."""
        events: list[Any] = []
        for rule in self.rules.matching(alert):
            reason = rule.reason(alert)
            incident_id = None
            if rule.action == "open_incident" and alert.incident is None:
                incident = Incident.report(
                    source=alert.kind if alert.kind in ("camera", "sensor") else "sensor",
                    category=rule.category,
                    severity=rule.severity,
                    grid=alert.grid,
                    centers=alert.centers,
                    description=rule.description or reason,
                    actor=rule_actor(rule),
                    external_id=f"alert:{alert.id}",
                )
                events.extend(incident.collect_events())
                incident_id = str(incident.id)
                outcome.incident = incident_id
            alert.fire_rule(
                rule=rule.name,
                action=rule.action,
                actor=rule_actor(rule),
                reason=reason,
                priority=rule.priority if rule.action == "raise_priority" else None,
                incident=incident_id,
            )
            events.extend(alert.collect_events())
            outcome.rules.append(rule.name)
        return events
