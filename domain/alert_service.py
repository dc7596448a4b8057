"""Alert ingest and duty-officer actions, on the same event store as incidents.

A batch of observations is turned into new or changed CameraAlert aggregates
(and any incidents a rule opens) and saved with one ``Application.save(*aggregates)``:
one transaction for the whole batch (group commit). Idempotency comes from the
derived alert id: a bulk existence check finds the alerts already stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.alert_rules import Rule, RuleSet
from domain.application import IncidentService, NotFound, UnknownGrid, VersionConflict
from domain.camera_alert import (
    TOPIC,
    CameraAlert,
    Observation,
    alert_id,
    raised_stored_event,
    window_start,
)
from domain.codec import plain
from domain.incident import TERMINAL, Actor, DomainError, Incident, InvalidCommand

# (alert ids) -> the ones already in the event store; one query instead of one per alert
ExistingIds = Callable[[Collection[UUID]], set[UUID]]

ALERT_ACTIONS = ("acknowledge", "dismiss", "link", "create-incident")


class UnknownCamera(DomainError):
    def __init__(self, camera: str | None, index: int | None = None) -> None:
        self.camera = camera
        self.index = index
        where = f"alert #{index}: " if index is not None else ""
        super().__init__(
            f"{where}camera {camera!r} is not in the camera registry; "
            "expected the id of a registered camera"
        )


class UnknownArea(DomainError):
    def __init__(self, detail: str, index: int | None = None) -> None:
        self.index = index
        where = f"alert #{index}: " if index is not None else ""
        super().__init__(where + detail)


class IngestUnavailable(Exception):
    """The store could not take a batch now (its writer process is restarting): nothing of the
    batch is acknowledged, and the feed sends it again (ingest is idempotent)."""

    def __init__(self, detail: str, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


Located = list[tuple[str, list[str]]]  # (grid, centers) of each observation of a batch


class IngestWriter(Protocol):
    """Stores located batches somewhere else (infra/ingest/writer.py: a writer process)."""

    def __call__(
        self,
        feed: str,
        observations: Sequence[Observation],
        located: Located,
        actor: Actor,
    ) -> list[Outcome]: ...


@dataclass
class Outcome:
    alert: str
    status: str  # created | updated | ended | duplicate
    rules: list[str] = field(default_factory=list)
    incident: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"alert": self.alert, "status": self.status}
        if self.rules:
            data["rules"] = self.rules
        if self.incident:
            data["incident"] = self.incident
        return data


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


class AlertService:
    """Ingests feed observations and runs officers' actions on alerts."""

    def __init__(
        self,
        incidents: IncidentService,
        camera_grid: Callable[[str], str],
        centers_for: Callable[[str], Sequence[str]],
        rules: RuleSet | None = None,
        existing: ExistingIds | None = None,
    ) -> None:
        self.incidents = incidents
        self._camera_grid = camera_grid  # raises KeyError for an unknown camera
        self._centers_for = centers_for  # grid -> centers; raises KeyError for an unknown grid
        self.rules = rules or RuleSet()
        self._existing = existing
        # One writer at a time: SQLite has one anyway, and a batch must see its own alerts.
        self._lock = threading.Lock()
        # Where located batches are stored: None stores them here (ingest_located); a writer
        # process's client (infra/ingest/writer.py) sends them there. It may raise
        # IngestUnavailable, and nothing of that batch is acknowledged.
        self.writer: IngestWriter | None = None
        # Whether new alerts carry their plain state for an in-process reader (the runner);
        # a writer process has none.
        self.keep_states = True

    # -- ingest ----------------------------------------------------------------------------

    def locate(self, obs: Observation, index: int | None = None) -> tuple[str, list[str]]:
        """(grid, centers) for an observation: 422-worthy errors for unknown cameras/areas."""
        if obs.camera is not None:
            try:
                grid = self._camera_grid(obs.camera)
            except KeyError:
                raise UnknownCamera(obs.camera, index) from None
        elif obs.grid is not None:
            grid = obs.grid
        else:
            raise UnknownArea("an alert needs a camera or a grid; got neither", index)
        try:
            centers = list(self._centers_for(grid))
        except KeyError:
            raise UnknownArea(f"grid {grid!r} is not in the jurisdiction tree", index) from None
        return grid, centers

    def existing(self, ids: Collection[UUID]) -> set[UUID]:
        if self._existing is not None:
            return self._existing(ids)
        found = set()
        for uuid in ids:
            try:
                self.incidents.repository.get(uuid)
            except AggregateNotFoundError:
                continue
            found.add(uuid)
        return found

    def ingest(
        self,
        feed: str,
        observations: Sequence[Observation],
        actor: Actor,
        authorize: Callable[[Sequence[str]], None] | None = None,
    ) -> list[Outcome]:
        """Store a batch in one transaction; returns one outcome per observation, in order.

        `authorize(centers)` is asked once per distinct jurisdiction in the batch, before anything
        is stored; it raises to refuse the whole batch."""
        # A batch comes from a handful of cameras: locate each place once and share the
        # (grid, centers) pair (read-only below) among its alerts.
        places: dict[tuple[str | None, str | None], tuple[str, list[str]]] = {}
        located = []
        for i, obs in enumerate(observations):
            where = (obs.camera, None) if obs.camera is not None else (None, obs.grid)
            place = places.get(where)
            if place is None:
                place = places[where] = self.locate(obs, i)
            located.append(place)
        if authorize is not None:
            for centers in {tuple(c) for _, c in places.values()}:
                authorize(centers)
            self._authorize_changes(feed, observations, located, authorize)
        if self.writer is not None:
            return self.writer(feed, observations, located, actor)
        return self.ingest_located(feed, observations, located, actor)

    def _authorize_changes(
        self,
        feed: str,
        observations: Sequence[Observation],
        located: Located,
        authorize: Callable[[Sequence[str]], None],
    ) -> None:
        """An update or end changes the stored alert where it was raised, wherever this delivery
        places it: authorize it there too (two keys may share a feed name, and with it the
        alerts' ids). Only an alert stored elsewhere than the delivery places it is asked."""
        placed = {alert_id(feed, obs.feed_event_id): centers
                  for obs, (_, centers) in zip(observations, located, strict=True)
                  if obs.phase != "new"}  # a "new" for a stored alert changes nothing
        if not placed:
            return
        elsewhere: set[tuple[str, ...]] = set()
        for uuid in self.existing(set(placed)):
            raised: Any = next(iter(self.incidents.events.get(uuid, lte=CameraAlert.INITIAL_VERSION)))
            if list(raised.centers) != placed[uuid]:
                elsewhere.add(tuple(raised.centers))
        for centers in elsewhere:
            authorize(centers)

    def ingest_located(
        self,
        feed: str,
        observations: Sequence[Observation],
        located: Located,
        actor: Actor,
    ) -> list[Outcome]:
        """Store observations already located (and authorized): what a writer process runs."""
        with self._lock:
            try:
                return self._ingest(feed, observations, located, actor)
            except IntegrityError:
                # Another process stored one of these alerts meanwhile: look again, once.
                return self._ingest(feed, observations, located, actor)

    def _ingest(
        self,
        feed: str,
        observations: Sequence[Observation],
        located: Located,
        actor: Actor,
    ) -> list[Outcome]:
        ids = [alert_id(feed, obs.feed_event_id) for obs in observations]
        # Keyed by uuid.int below: an int hashes in C, a UUID in Python (~5 lookups an alert).
        stored = {uuid.int for uuid in self.existing(set(ids))}
        alerts: dict[int, CameraAlert] = {}  # aggregates loaded or built in this batch
        # New alerts no rule touched (fast path): (index in the batch, Raised timestamp). They
        # are stored without an event object or aggregate; built only if the batch touches
        # them again. Nothing of theirs but the StoredEvent outlives the loop iteration.
        fresh: dict[int, tuple[int, datetime]] = {}
        # In the order they happened (notification ids follow it): domain events, or the
        # StoredEvent of a fast-path Raised.
        events: list[Any] = []
        outcomes: list[Outcome] = []
        rules = self.rules.rules
        may_match, matching = self.rules.may_match, self.rules.matching
        mapper = self.incidents.mapper
        now = CameraAlert.Raised.create_timestamp  # type: ignore[attr-defined]
        raised_fields = CameraAlert.raised_fields
        keep_states = self.keep_states
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
            if alert is None and key in stored:
                alert = alerts[key] = self.incidents.repository.get(uuid)
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
                    events.append(raised_stored_event(mapper, uuid, fields, timestamp, text_id,
                                                     keep_state=keep_states))
                    fresh[key] = (index, timestamp)
                outcomes.append(outcome)
                continue
            outcome = Outcome(str(uuid), alert.observe(obs, actor=actor))
            if outcome.status != "duplicate":
                events.extend(alert.collect_events())
                if rules:
                    events.extend(self._fire_rules(alert, outcome))
            outcomes.append(outcome)
        # Group commit: every new event of the batch in one transaction. This is what
        # Application.save(*aggregates) does (snapshots and the repository cache are off), minus
        # its per-object runtime-protocol checks and the Recording objects it builds for
        # `notify` (deprecated, unused here): together ~20% of the hot path.
        if events:
            to_stored = mapper.to_stored_event
            self.incidents.recorder.insert_events(
                [e if isinstance(e, StoredEvent) else to_stored(e) for e in events]
            )
        return outcomes

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

    # -- duty officers ---------------------------------------------------------------------

    def get(self, alert_ref: str) -> CameraAlert:
        try:
            uuid = UUID(alert_ref)
        except ValueError:
            raise NotFound(f"alert {alert_ref!r} not found; ids are UUIDs") from None
        try:
            alert: object = self.incidents.repository.get(uuid)
        except AggregateNotFoundError:
            raise NotFound(f"alert {alert_ref!r} not found") from None
        if not isinstance(alert, CameraAlert):
            raise NotFound(f"{alert_ref!r} is not an alert")
        return alert

    def act(self, alert_ref: str, action: str, *, actor: Actor, **params: Any) -> dict[str, Any]:
        """Acknowledge, dismiss, link or turn an alert into a new incident; returns the alert."""
        if action not in ALERT_ACTIONS:
            raise NotFound(f"unknown alert action {action!r}; expected one of {', '.join(ALERT_ACTIONS)}")
        with self._lock:
            alert = self.get(alert_ref)
            to_save: list[Aggregate] = [alert]
            if action == "acknowledge":
                alert.acknowledge(actor=actor, note=str(params.get("note", "")))
            elif action == "dismiss":
                alert.dismiss(actor=actor, reason=str(params.get("reason", "")))
            elif action == "link":
                incident = self.incidents.get(str(params["incident"]))
                if incident.status in TERMINAL:
                    raise DomainError(
                        f"incident {incident.id} is {incident.status.value}; link the alert to an "
                        "open incident, reopen this one first, or create a new incident from it")
                alert.link(actor=actor, incident=str(incident.id))
            else:
                alert.check_can_create_incident()
                what = f"{alert.label} ({alert.camera or alert.grid}, {alert.at})"
                incident = Incident.report(
                    source=alert.kind if alert.kind in ("camera", "sensor") else "sensor",
                    category=str(params.get("category") or "camera_alert"),
                    severity=str(params.get("severity") or "routine"),
                    grid=alert.grid,
                    centers=alert.centers,
                    description=str(params.get("description") or f"camera alert: {what}"),
                    actor=actor,
                    external_id=f"alert:{alert.id}",
                )
                alert.incident_created(actor=actor, incident=str(incident.id))
                to_save.append(incident)
            try:
                self.incidents.save(*to_save)
            except IntegrityError:
                raise VersionConflict(
                    f"alert {alert_ref} was changed by another command at the same time; retry"
                ) from None
            return alert.as_dict()

    def acknowledge_storm(
        self,
        *,
        kind: str,
        ident: str,
        size: int,
        start: int,
        from_notification: int,
        actor: Actor,
        note: str = "",
        authorize: Callable[[list[str]], None] = lambda centers: None,
        limit: int = 50_000,
        max_scan: int = 500_000,
    ) -> int:
        """Acknowledge every unacknowledged alert of one storm window (camera or grid), in one
        transaction; returns how many. The window is found by the alerts' own start times."""
        if kind not in ("camera", "grid"):
            raise InvalidCommand(f"storm kind must be camera or grid; got {kind!r}")
        recorder = self.incidents.recorder
        mapper = self.incidents.mapper
        topic = f"{TOPIC}.Raised"
        ids: list[UUID] = []
        position = max(1, from_notification)
        scanned = 0
        # Alerts of a window are stored close together; a bounded scan keeps this a cheap action.
        while len(ids) < limit and scanned < max_scan:
            page = recorder.select_notifications(start=position, limit=1000, topics=[topic])
            if not page:
                break
            scanned += len(page)
            for notification in page:
                raised: Any = mapper.to_domain_event(notification)
                if getattr(raised, kind) == ident and window_start(raised.start_time, size) == start:
                    ids.append(raised.originator_id)
            position = page[-1].id + 1
        with self._lock:
            events: list[Any] = []
            for uuid in ids[:limit]:
                alert: CameraAlert = self.incidents.repository.get(uuid)
                if alert.disposition != "new":
                    continue
                authorize(alert.centers)
                alert.acknowledge(actor=actor, note=note or f"storm {kind}:{ident}:{size}")
                events.extend(alert.collect_events())
            if events:
                try:
                    self.incidents.events.put(events)
                except IntegrityError:  # a feed updated one of them meanwhile (the writer process)
                    raise VersionConflict(
                        "an alert of this storm changed while it was being acknowledged; retry"
                    ) from None
        return len(events)

    def timeline(self, alert_ref: str) -> list[dict[str, Any]]:
        """Every event of an alert, oldest first, as plain JSON (rule firings included)."""
        alert = self.get(alert_ref)
        timeline = []
        for domain_event in self.incidents.events.get(alert.id):
            state = {
                k: plain(v)
                for k, v in vars(domain_event).items()
                if k not in ("originator_id", "originator_topic", "timestamp", "centers")
            }
            timeline.append(
                {
                    "version": state.pop("originator_version"),
                    "type": type(domain_event).__name__,
                    "at": getattr(domain_event, "timestamp").isoformat(),  # noqa: B009
                    "actor": state.pop("actor", None),
                    "data": state,
                }
            )
        return timeline


__all__ = ["AlertService", "IngestUnavailable", "IngestWriter", "Located", "Outcome", "UnknownArea", "UnknownCamera", "UnknownGrid"]
