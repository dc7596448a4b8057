"""Application service for incidents, on eventsourcing's Application."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Transcoder

from domain.actions import BY_PATH, PATHS
from domain.codec import OrjsonTranscoder, plain
from domain.incident import Actor, DomainError, Incident, InvalidCommand
from domain.sla_policy import SlaPolicy, StepClock


class NotFound(DomainError):
    """An id that names nothing."""


class VersionConflict(DomainError):
    """The incident changed since the caller read it (or while the command ran)."""


class UnknownGrid(DomainError):
    """A report for a grid the jurisdiction tree does not have."""


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's `project_aggregate` without its check of every event against a
    runtime-checkable Protocol (slow on Python 3.11: a seventh of a command's time): every event
    of ours is an `Aggregate` event, with `mutate`."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def changed_meanwhile(incident: Incident) -> VersionConflict:
    """The conflict of a save that lost the race for the incident's next version."""
    return VersionConflict(f"incident {incident.id} was changed by another command at the same "
                           "time; reload and retry")


def require_actor(actor: Actor) -> None:
    """No anonymous writes: every event names a user and a role."""
    if not isinstance(actor, dict) or not actor.get("user") or not actor.get("role"):
        raise InvalidCommand(f"a command needs an actor with a user and a role; got {actor!r}")


class IncidentService(Application[UUID]):
    """Reports incidents and moves them through the five-step loop."""

    name = "linkage"

    def __init__(
        self,
        centers_for: Callable[[str], Sequence[str]],
        env: dict[str, str] | None = None,
        *,
        policy: SlaPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        community_for: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__(env=env)
        # grid id -> the center ids it shows on (township, district, city); raises KeyError
        self._centers_for = centers_for
        # The SLA policy times each step (None: only the dispatch's own due time counts);
        # the clock is injectable so that scenarios run in virtual time.
        self.policy = policy
        self.clock = clock
        self._community_for = community_for

    def step_clock(self) -> StepClock | None:
        """The policy with the clock's reading now, for a command; None without a policy."""
        return StepClock(self.policy, self.clock()) if self.policy is not None else None

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    def report(self, *, actor: Actor, grid: str, **fields: Any) -> Incident:
        incident = self.new_report(actor=actor, grid=grid, **fields)
        self.save(incident)
        return incident

    def new_report(self, *, actor: Actor, grid: str, **fields: Any) -> Incident:
        """The reported incident with its first event pending, not saved: the caller saves it
        (the HTTP handler commits it without blocking its event loop). Reads nothing."""
        require_actor(actor)
        try:
            centers = list(self._centers_for(grid))
        except KeyError:
            raise UnknownGrid(
                f"grid {grid!r} is not in the jurisdiction tree; expected the id of a grid"
            ) from None
        return Incident.report(actor=actor, grid=grid, centers=centers,
                               clock=self.step_clock(), **fields)

    def get(self, incident_id: str) -> Incident:
        try:
            uuid = UUID(incident_id)
        except ValueError:
            raise NotFound(f"incident {incident_id!r} not found; ids are UUIDs") from None
        try:
            incident: Incident = self.repository.get(uuid, projector_func=_project)
        except AggregateNotFoundError:
            raise NotFound(f"incident {incident_id!r} not found") from None
        if not isinstance(incident, Incident):
            raise NotFound(f"{incident_id!r} is not an incident")
        return incident

    def act(
        self,
        incident_id: str,
        action: str,
        *,
        actor: Actor,
        expected_version: int | None = None,
        **params: Any,
    ) -> Incident:
        """Run one loop action (named as in the HTTP path) on an incident and save its events."""
        incident = self.decide(incident_id, action, actor=actor,
                               expected_version=expected_version, **params)
        self._save(incident)
        return incident

    def decide(
        self,
        incident_id: str,
        action: str,
        *,
        actor: Actor,
        expected_version: int | None = None,
        loaded: Incident | None = None,
        **params: Any,
    ) -> Incident:
        """`act` without the save: the incident with the action's events pending. `loaded`: the
        incident as the caller just got it (`get`), so as not to load it twice."""
        require_actor(actor)
        loop_action = BY_PATH.get(action)
        if loop_action is None:
            raise NotFound(f"unknown action {action!r}; expected one of {', '.join(PATHS)}")
        incident = loaded if loaded is not None and str(loaded.id) == incident_id \
            else self.get(incident_id)
        if expected_version is not None and expected_version != incident.version:
            raise VersionConflict(
                f"incident {incident_id} is at version {incident.version}, "
                f"but the command expected version {expected_version}; reload and retry"
            )
        if action == "mark-duplicate":
            self.get(str(params["of"]))  # the original must exist
        loop_action.command(incident, actor=actor, clock=self.step_clock(), **params)
        return incident

    def _save(self, incident: Incident) -> None:
        try:
            self.save(incident)
        except IntegrityError:
            raise changed_meanwhile(incident) from None

    def escalate_overdue(
        self, incident_id: str, *, actor: Actor, step: str, deadline: str, now: datetime,
        every: timedelta | None = None,
    ) -> Incident:
        """Climb one rung of the escalation ladder for a breached step (the SLA watcher's
        command); NotEscalated when that rung was taken already or is not due."""
        require_actor(actor)
        incident = self.get(incident_id)
        if every is None:
            every = self.policy.escalate_every if self.policy is not None else timedelta(hours=1)
        community = self._community_for(incident.grid) if self._community_for else None
        incident.escalate_overdue(actor=actor, step=step, deadline=deadline, now=now, every=every,
                                  community=community)
        self._save(incident)
        return incident

    def timeline(self, incident_id: str) -> list[dict[str, Any]]:
        """Every event of an incident, oldest first, as plain JSON."""
        incident = self.get(incident_id)
        events = []
        for domain_event in self.events.get(incident.id):
            state = {
                k: plain(v)
                for k, v in vars(domain_event).items()
                if k not in ("originator_id", "originator_topic", "timestamp", "centers")
            }
            version = state.pop("originator_version")
            actor = state.pop("actor", None)
            request_id = actor.pop("request_id", None) if isinstance(actor, dict) else None
            events.append(
                {
                    "version": version,
                    "type": type(domain_event).__name__,
                    "at": getattr(domain_event, "timestamp").isoformat(),  # noqa: B009
                    "actor": actor,
                    "request_id": request_id,
                    "data": state,
                }
            )
        return events
