"""Alert ingest and duty-officer actions, on the same event store as incidents.

Ingest locates a batch of observations (camera -> grid -> centers), lets the caller authorize
every jurisdiction it touches, and hands it to an `AlertStore` (domain/alert_store.py), which
decides its events (domain/alert_decision.py) and commits them in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.alert_store import AlertStore, IngestUnavailable, Located, Outcome, StoredAlerts
from domain.application import IncidentService, NotFound, VersionConflict
from domain.camera_alert import CameraAlert, Observation, alert_id, window_start
from domain.codec import plain
from domain.incident import TERMINAL, Actor, DomainError, Incident, InvalidCommand

ALERT_ACTIONS = ("acknowledge", "dismiss", "link", "create-incident")


class StormWindow(NamedTuple):
    """One storm window as a view shows it: camera or grid, its id, size and start (epoch
    seconds), and the notification id from which its alerts are stored."""

    kind: str
    ident: str
    size: int
    start: int
    from_notification: int


class UnknownCamera(InvalidCommand):
    def __init__(self, camera: str | None, index: int | None = None) -> None:
        self.camera = camera
        self.index = index
        where = f"alert #{index}: " if index is not None else ""
        super().__init__(
            f"{where}camera {camera!r} is not in the camera registry; "
            "expected the id of a registered camera"
        )


class UnknownArea(InvalidCommand):
    def __init__(self, detail: str, index: int | None = None) -> None:
        self.detail = detail
        self.index = index
        where = f"alert #{index}: " if index is not None else ""
        super().__init__(where + detail)


class AlertService:
    """Ingests feed observations and runs officers' actions on alerts."""

    def __init__(
        self,
        incidents: IncidentService,
        store: AlertStore,
        stored: StoredAlerts,
        camera_grid: Callable[[str], str],
        centers_for: Callable[[str], Sequence[str]],
    ) -> None:
        self.incidents = incidents
        self.store = store
        self.stored = stored
        self._camera_grid = camera_grid  # raises KeyError for an unknown camera
        self._centers_for = centers_for  # grid -> centers; raises KeyError for an unknown grid

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

    def ingest(
        self,
        feed: str,
        observations: Sequence[Observation],
        actor: Actor,
        authorize: Callable[[Sequence[str]], None] | None = None,
    ) -> list[Outcome]:
        """Store a batch in one transaction; returns one outcome per observation, in order.

        `authorize(centers)` is asked once per distinct jurisdiction in the batch, before anything
        is stored; it raises to refuse the whole batch. The store may raise IngestUnavailable:
        nothing of the batch was stored."""
        # A batch comes from a handful of cameras: locate each place once and share the
        # (grid, centers) pair (read-only below) among its alerts.
        places: dict[tuple[str | None, str | None], tuple[str, list[str]]] = {}
        located: Located = []
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
        return self.store.ingest(feed, observations, located, actor)

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
        for uuid in self.stored.existing(set(placed)):
            stored_at = self.stored.load(uuid).centers
            if list(stored_at) != placed[uuid]:
                elsewhere.add(tuple(stored_at))
        for where in elsewhere:
            authorize(where)

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
        with self.store.exclusive():
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
        also: Sequence[StormWindow] = (),
    ) -> int:
        """Acknowledge every unacknowledged alert of one storm window (camera or grid), and of
        the windows `also` names (the other windows of one burst), in one transaction; returns
        how many. The windows are found by the alerts' own start times. Each event names every
        window acknowledged (`storms`), so the views mark them all, even a window whose alerts
        another of them already covered."""
        windows = [StormWindow(kind, ident, size, start, from_notification), *also]
        for window in windows:
            if window.kind not in ("camera", "grid"):
                raise InvalidCommand(f"storm kind must be camera or grid; got {window.kind!r}")
        refs = [f"{w.kind}:{w.ident}:{w.size}@{w.start}" for w in windows]
        ids: list[UUID] = []
        seen: set[UUID] = set()
        position = max(1, min(w.from_notification for w in windows))
        scanned = 0
        # Alerts of a window are stored close together; a bounded scan keeps this a cheap action.
        while len(ids) < limit and scanned < max_scan:
            page = self.stored.raised_from(position, 1000)
            if not page:
                break
            scanned += len(page)
            for _, raised in page:
                if raised.originator_id in seen:
                    continue
                if any(getattr(raised, w.kind) == w.ident
                       and window_start(raised.start_time, w.size) == w.start for w in windows):
                    ids.append(raised.originator_id)
                    seen.add(raised.originator_id)
            position = page[-1][0] + 1
        with self.store.exclusive():
            events: list[Any] = []
            for uuid in ids[:limit]:
                alert = self.stored.load(uuid)
                if alert.disposition != "new":
                    continue
                authorize(alert.centers)
                alert.acknowledge(actor=actor, note=note or f"storm {kind}:{ident}:{size}",
                                  storms=refs)
                events.extend(alert.collect_events())
            if events:
                try:
                    self.incidents.events.put(events)
                except IntegrityError:  # a feed's batch updated one of them meanwhile
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


__all__ = ["AlertService", "IngestUnavailable", "Outcome", "UnknownArea", "UnknownCamera"]
