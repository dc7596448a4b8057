"""The CameraAlert aggregate: one alert from a camera, sensor or early-warning feed.

Lifecycle: raised, updated, ended (what the feed says); acknowledged, dismissed,
linked to an incident or turned into a new incident (what a duty officer does);
rule firings (what the rules file decided, so auditors see why an incident appeared).

The id is derived from the feed's own event id, so a redelivery, an HTTP retry
or a Frigate ``update`` finds the same aggregate instead of making a second alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from hashlib import sha1
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

from domain.incident import Actor, DomainError, InvalidCommand, public_name
from domain.ingest_limits import EARLIEST, LATEST, time_problem

# Fixed forever: changing it would change every alert id.
ALERT_NAMESPACE = UUID("6c1f3a52-5d0e-4f53-9a63-3f1bd0c2a7e1")

PHASES = ("new", "update", "end")
KINDS = ("camera", "sensor", "cap")
PRIORITIES = ("normal", "high", "critical")
# The dispositions each officer's action may start from (what a duty officer has done with the
# alert: new, acknowledged, dismissed, linked or escalated; only "new" counts as unacknowledged).
HANDLED_FROM: dict[str, tuple[str, ...]] = {
    "acknowledge": ("new",),
    "dismiss": ("new", "acknowledged"),
    "link": ("new", "acknowledged"),
    "create_incident": ("new", "acknowledged"),
}


_NAMESPACE_BYTES = ALERT_NAMESPACE.bytes
# uuid5 as RFC 4122 defines it (and uuid.uuid5 computes it): SHA-1 of namespace + name, first
# 16 bytes, version 5 and the RFC variant. Masking the integer once is half uuid.uuid5's cost.
_KEEP = 0xFFFFFFFF_FFFF_0FFF_3FFF_FFFFFFFFFFFF  # clear the version nibble and the variant bits
_V5 = 0x00000000_0000_5000_8000_000000000000  # version 5, variant 10


@lru_cache(maxsize=65536)
def alert_id(feed: str, feed_event_id: str) -> UUID:
    """The alert id for a feed's event id: the same every time it is delivered.

    Equal to ``uuid5(ALERT_NAMESPACE, f"{feed}:{feed_event_id}")``."""
    digest = sha1(_NAMESPACE_BYTES + f"{feed}:{feed_event_id}".encode(), usedforsecurity=False)
    return UUID(int=(int.from_bytes(digest.digest()[:16], "big") & _KEEP) | _V5)


def window_start(at: float, size: int) -> int:
    """Start of the tumbling window of `size` seconds holding time `at` (storms use it)."""
    return int(at // size) * size


def iso(epoch_seconds: float) -> str:
    """``datetime.fromtimestamp(epoch_seconds, UTC).isoformat()``, the date and time of day
    formatted once per second (a burst of alerts shares its seconds): a third of the cost."""
    if type(epoch_seconds) is not float or not 0.0 <= epoch_seconds < 253_402_300_799.0:
        return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()
    seconds = int(epoch_seconds)  # as datetime does: whole seconds, then microseconds rounded
    micro = round((epoch_seconds - seconds) * 1e6)  # half to even, as datetime rounds
    if micro >= 1_000_000:
        seconds, micro = seconds + 1, micro - 1_000_000
    if micro:
        return f"{_iso_second(seconds)}.{micro:06d}+00:00"
    return f"{_iso_second(seconds)}+00:00"


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()[:-6]  # without "+00:00"


@dataclass(frozen=True, slots=True)
class Observation:
    """One delivery from a feed, already decoded and normalised (no grid yet)."""

    feed_event_id: str
    start_time: float  # epoch seconds, from the feed: storm windows use it, never a clock
    phase: str = "new"
    kind: str = "camera"
    camera: str | None = None
    grid: str | None = None  # only for feeds without a camera (CAP areas, fixed sensors)
    label: str = "alert"
    score: float | None = None
    top_score: float | None = None
    zones: tuple[str, ...] = ()
    plate: str | None = None
    end_time: float | None = None
    seen_time: float | None = None  # the latest frame time the feed reported
    false_positive: bool = False
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict, hash=False)


class AlertAlreadyHandled(DomainError):
    def __init__(self, action: str, disposition: str) -> None:
        allowed = [a for a, froms in HANDLED_FROM.items() if disposition in froms]
        self.action = action
        self.disposition = disposition
        self.allowed = allowed
        super().__init__(
            f"cannot {public_name(action)} an alert that is {disposition!r}; "
            f"allowed actions: {', '.join(public_name(a) for a in allowed) or 'none'}"
        )


class CameraAlert(Aggregate):
    """An alert from one feed event, with what the feed and the officers did to it."""

    @staticmethod
    def create_id(feed: str, feed_event_id: str) -> UUID:
        return alert_id(feed, feed_event_id)

    @event("Raised")
    def __init__(
        self,
        *,
        feed: str,
        feed_event_id: str,
        kind: str,
        camera: str | None,
        grid: str,
        centers: list[str],
        label: str,
        score: float | None,
        top_score: float | None,
        zones: list[str],
        plate: str | None,
        start_time: float,
        at: str,
        end_time: float | None,
        false_positive: bool,
        description: str,
        details: dict[str, Any],
        actor: Actor,
        seen_time: float | None = None,
    ) -> None:
        self.feed = feed
        self.feed_event_id = feed_event_id
        self.kind = kind
        self.camera = camera
        self.grid = grid
        self.centers = list(centers)
        self.label = label
        self.score = score
        self.top_score = top_score
        self.zones = list(zones)
        self.plate = plate
        self.start_time = start_time
        self.at = at
        self.end_time = end_time
        self.last_seen = max(
            t for t in (start_time, end_time, seen_time) if t is not None
        )
        self.false_positive = false_positive
        self.description = description
        self.details = details
        self.ended = end_time is not None
        self.priority = "normal"
        self.disposition = "new"
        self.incident: str | None = None
        self.rules_fired: list[str] = []

    @staticmethod
    def raised_fields(
        obs: Observation, *, feed: str, grid: str, centers: list[str], actor: Actor
    ) -> dict[str, Any]:
        """The Raised event's fields for an observation (checked)."""
        if obs.kind not in KINDS:
            raise InvalidCommand(f"alert kind must be one of {', '.join(KINDS)}; got {obs.kind!r}")
        if not centers:
            raise InvalidCommand(f"grid {grid!r} belongs to no center")
        if not EARLIEST <= obs.start_time <= LATEST:  # the edge checks it; no path may skip it
            raise InvalidCommand(f"alert start time {obs.start_time} {time_problem(obs.start_time)}")
        return {
            "feed": feed,
            "feed_event_id": obs.feed_event_id,
            "kind": obs.kind,
            "camera": obs.camera,
            "grid": grid,
            "centers": list(centers),
            "label": obs.label,
            "score": obs.score,
            "top_score": obs.top_score if obs.top_score is not None else obs.score,
            "zones": list(obs.zones),
            "plate": obs.plate,
            "start_time": obs.start_time,
            "at": iso(obs.start_time),
            "end_time": obs.end_time if obs.phase == "end" else None,
            "false_positive": obs.false_positive,
            "description": obs.description,
            "details": dict(obs.details),
            "actor": actor,
            "seen_time": obs.seen_time,
        }

    @classmethod
    def raise_(
        cls, obs: Observation, *, feed: str, grid: str, centers: list[str], actor: Actor
    ) -> CameraAlert:
        return cls(**cls.raised_fields(obs, feed=feed, grid=grid, centers=centers, actor=actor))

    @classmethod
    def raised_event_of(cls, originator_id: UUID, fields: dict[str, Any], timestamp: datetime) -> Any:
        """The Raised event with these ``raised_fields``, id and timestamp, without building the
        aggregate: eventsourcing's generic constructor costs ~35 µs an alert, and a new alert that
        no rule touches needs at most its event. ``from_raised`` builds the aggregate when needed.
        """
        raised_class = cls.Raised  # type: ignore[attr-defined]  # made by @event("Raised")
        return raised_class(
            originator_id=originator_id,
            originator_version=cls.INITIAL_VERSION,
            timestamp=timestamp,
            originator_topic=TOPIC,
            **fields,
        )

    @staticmethod
    def from_raised(raised: Any) -> CameraAlert:
        """The aggregate a Raised event creates (the event itself is not pending on it)."""
        alert = raised.mutate(None)
        assert isinstance(alert, CameraAlert)
        return alert

    # -- what the feed says again ----------------------------------------------------------

    def changes_from(self, obs: Observation) -> dict[str, Any]:
        """The fields a later delivery changes; {} for a pure duplicate."""
        changes: dict[str, Any] = {}
        if obs.phase == "new":
            return changes  # a redelivered "new": the alert exists already
        if obs.score is not None and obs.score != self.score:
            changes["score"] = obs.score
        top = max(x for x in (obs.top_score, obs.score, self.top_score, -1.0) if x is not None)
        if top >= 0 and top != self.top_score:
            changes["top_score"] = top
        if obs.zones and list(obs.zones) != self.zones:
            changes["zones"] = list(obs.zones)
        if obs.plate is not None and obs.plate != self.plate:
            changes["plate"] = obs.plate
        if obs.false_positive != self.false_positive:
            changes["false_positive"] = obs.false_positive
        seen = obs.end_time if obs.phase == "end" and obs.end_time is not None else obs.seen_time
        if seen is not None and seen > self.last_seen:
            changes["last_seen"] = seen
        return changes

    def observe(self, obs: Observation, *, actor: Actor) -> str:
        """Apply a later delivery: 'updated', 'ended' or 'duplicate' (no event)."""
        if obs.phase not in PHASES:
            raise InvalidCommand(f"phase must be one of {', '.join(PHASES)}; got {obs.phase!r}")
        if self.ended:
            return "duplicate"  # nothing follows an end; redeliveries of anything change nothing
        changes = self.changes_from(obs)
        if obs.phase == "end":
            end_time = obs.end_time if obs.end_time is not None else self.last_seen
            self._ended(actor=actor, centers=self.centers, end_time=end_time, changes=changes)
            return "ended"
        if not changes:
            return "duplicate"
        self._updated(actor=actor, centers=self.centers, changes=changes)
        return "updated"

    @event("Updated")
    def _updated(self, actor: Actor, centers: list[str], changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    @event("Ended")
    def _ended(
        self, actor: Actor, centers: list[str], end_time: float, changes: dict[str, Any]
    ) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        self.end_time = end_time
        self.last_seen = max(self.last_seen, end_time)
        self.ended = True

    # -- what the rules decided --------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The fields a console shows for the alert (carried on rule firings)."""
        return {
            "camera": self.camera,
            "grid": self.grid,
            "label": self.label,
            "score": self.top_score,
            "zones": list(self.zones),
            "plate": self.plate,
            "at": self.at,
            "kind": self.kind,
        }

    def fire_rule(
        self,
        *,
        rule: str,
        action: str,
        actor: Actor,
        reason: str,
        priority: str | None = None,
        incident: str | None = None,
    ) -> None:
        if rule in self.rules_fired:
            return  # a rule fires once per alert
        if priority is not None and priority not in PRIORITIES:
            raise InvalidCommand(f"priority must be one of {', '.join(PRIORITIES)}; got {priority!r}")
        self._rule_fired(
            actor=actor,
            centers=self.centers,
            rule=rule,
            action=action,
            reason=reason,
            priority=priority,
            incident=incident,
            was=self.disposition,
            alert=self.summary(),
        )

    @event("RuleFired")
    def _rule_fired(
        self,
        actor: Actor,
        centers: list[str],
        rule: str,
        action: str,
        reason: str,
        priority: str | None,
        incident: str | None,
        was: str,
        alert: dict[str, Any],
    ) -> None:
        self.rules_fired = [*self.rules_fired, rule]
        if priority is not None and PRIORITIES.index(priority) > PRIORITIES.index(self.priority):
            self.priority = priority
        if incident is not None:
            self.incident = incident
            self.disposition = "escalated"

    # -- what duty officers do ---------------------------------------------------------------

    def _check(self, action: str) -> str:
        if self.disposition not in HANDLED_FROM[action]:
            raise AlertAlreadyHandled(action, self.disposition)
        return self.disposition

    def acknowledge(self, *, actor: Actor, note: str = "", storms: list[str] | None = None) -> None:
        """Acknowledge the alert; `storms` ("kind:id:size@window start" each) when it is
        acknowledged with the storm windows being acknowledged together, which the consoles'
        views then mark acknowledged."""
        was = self._check("acknowledge")
        if not storms:
            self._acknowledged(actor=actor, centers=self.centers, note=note, was=was)
        else:
            self._acknowledged(actor=actor, centers=self.centers, note=note, was=was,
                               storms=list(storms))

    @event("Acknowledged")
    def _acknowledged(self, actor: Actor, centers: list[str], note: str, was: str,
                      storms: list[str] | None = None) -> None:
        self.disposition = "acknowledged"

    def dismiss(self, *, actor: Actor, reason: str) -> None:
        was = self._check("dismiss")
        if not reason.strip():
            raise InvalidCommand("dismissing an alert needs a reason (e.g. 'false positive: shadow')")
        self._dismissed(actor=actor, centers=self.centers, reason=reason, was=was)

    @event("Dismissed")
    def _dismissed(self, actor: Actor, centers: list[str], reason: str, was: str) -> None:
        self.disposition = "dismissed"

    def link(self, *, actor: Actor, incident: str) -> None:
        was = self._check("link")
        self._linked(actor=actor, centers=self.centers, incident=incident, was=was)

    @event("LinkedToIncident")
    def _linked(self, actor: Actor, centers: list[str], incident: str, was: str) -> None:
        self.disposition = "linked"
        self.incident = incident

    def check_can_create_incident(self) -> None:
        self._check("create_incident")

    def incident_created(self, *, actor: Actor, incident: str) -> None:
        was = self._check("create_incident")
        self._incident_created(actor=actor, centers=self.centers, incident=incident, was=was)

    @event("IncidentCreated")
    def _incident_created(self, actor: Actor, centers: list[str], incident: str, was: str) -> None:
        self.disposition = "escalated"
        self.incident = incident

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "version": self.version,
            "feed": self.feed,
            "feed_event_id": self.feed_event_id,
            "kind": self.kind,
            "camera": self.camera,
            "grid": self.grid,
            "centers": list(self.centers),
            "label": self.label,
            "score": self.score,
            "top_score": self.top_score,
            "zones": list(self.zones),
            "plate": self.plate,
            "at": self.at,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "last_seen": self.last_seen,
            "ended": self.ended,
            "false_positive": self.false_positive,
            "description": self.description,
            "details": self.details,
            "priority": self.priority,
            "disposition": self.disposition,
            "incident": self.incident,
            "rules_fired": list(self.rules_fired),
            "allowed_actions": [
                public_name(a) for a, froms in HANDLED_FROM.items() if self.disposition in froms
            ],
            "created_at": self.created_on.isoformat(),
            "updated_at": self.modified_on.isoformat(),
        }


TOPIC = get_topic(CameraAlert)
