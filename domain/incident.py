"""The Incident aggregate: one case through the five-step closed loop.

Public command methods check the invariant first, then trigger a private
event-decorated method that only changes state. Every event carries the actor
and the centers the incident belongs to, so a consumer can route it without
any other state.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from eventsourcing.domain import Aggregate, event


class Actor(TypedDict):
    """Who acted: verified user id, role and home center."""

    user: str
    role: str
    center: str | None
    # For a department handler: the department id an incident's assignee names.
    department: NotRequired[str]
    # The id of the request that did it (command_center/request_context.py), for tracing.
    request_id: NotRequired[str]


class Status(StrEnum):
    REPORTED = "reported"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    DISPATCHED = "dispatched"
    RETURNED = "returned"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    VISITED = "visited"
    REOPENED = "reopened"
    CLOSED = "closed"


TERMINAL: frozenset[Status] = frozenset({Status.REJECTED, Status.DUPLICATE, Status.CLOSED})

SOURCES = ("hotline", "grid_worker", "camera", "sensor", "wechat", "resident", "department", "open311")
SEVERITIES = ("routine", "major")
ASSIGNEE_KINDS = ("department", "grid_worker", "party")

# Which actions each status allows. Routing is data; the methods consult it.
ALLOWED: dict[Status, tuple[str, ...]] = {
    Status.REPORTED: ("accept", "reject", "mark_duplicate"),
    Status.ACCEPTED: ("dispatch", "reject"),
    Status.RETURNED: ("dispatch", "reject"),
    Status.REOPENED: ("dispatch",),
    Status.DISPATCHED: ("acknowledge", "return", "transfer"),
    Status.ACKNOWLEDGED: ("progress", "resolve", "return", "transfer"),
    Status.RESOLVED: ("return_visit",),
    Status.VISITED: ("close", "reopen"),
    Status.REJECTED: (),
    Status.DUPLICATE: (),
    Status.CLOSED: (),
}

# Statuses in which a case is being worked and can be supervised or escalated (step 4).
SUPERVISABLE: frozenset[Status] = frozenset(
    {Status.ACCEPTED, Status.DISPATCHED, Status.RETURNED, Status.ACKNOWLEDGED, Status.REOPENED}
)
# Escalation climbs the centers an incident belongs to: township, then district, then city.
ESCALATION_LEVELS = ("township", "district", "city")

# A satisfaction at or below this means the resident is dissatisfied: the case must be reopened.
DISSATISFIED_AT_OR_BELOW = 2


def public_name(action: str) -> str:
    """An action as paths, permissions and messages spell it: `mark_duplicate` -> `mark-duplicate`.

    The domain names actions like its methods (`ALLOWED`); everything users see uses this."""
    return action.replace("_", "-")


def can_escalate(status: Status, escalations: int) -> bool:
    """Whether a case in `status`, escalated `escalations` times, can go one level higher."""
    return status in SUPERVISABLE and escalations < len(ESCALATION_LEVELS)


class DomainError(Exception):
    """A command that the domain refuses; the message says what was expected."""


class IllegalTransition(DomainError):
    def __init__(self, action: str, status: Status, allowed: tuple[str, ...], why: str = ""):
        self.action = action
        self.status = status
        self.allowed = allowed
        allowed_text = ", ".join(public_name(a) for a in allowed) or "none (final status)"
        reason = f" ({why})" if why else ""
        super().__init__(
            f"cannot {public_name(action)} an incident in status {status.value!r}{reason}; "
            f"allowed actions: {allowed_text}"
        )


class InvalidCommand(DomainError):
    """A command whose values break an invariant (not a status problem)."""


class Incident(Aggregate):
    """A reported case, from intake to closure and return visit."""

    @event("Reported")
    def __init__(
        self,
        *,
        source: str,
        category: str,
        severity: str,
        grid: str,
        centers: list[str],
        description: str,
        location: dict[str, float] | None,
        reporter: dict[str, str] | None,
        actor: Actor,
        external_id: str | None = None,
    ) -> None:
        self.source = source
        self.category = category
        self.severity = severity
        self.grid = grid
        self.centers = list(centers)
        self.description = description
        self.location = location
        self.reporter = reporter
        self.external_id = external_id
        self.reported_by = actor
        self.status = Status.REPORTED
        self.assignee: dict[str, str] | None = None
        self.due: str | None = None
        self.duplicate_of: str | None = None
        self.outcome: str | None = None
        self.satisfaction: int | None = None
        self.reopen_count = 0
        self.escalations = 0
        self.escalated_to: str | None = None
        self.supervised_by: str | None = None

    @classmethod
    def report(
        cls,
        *,
        source: str,
        category: str,
        severity: str,
        grid: str,
        centers: list[str],
        description: str,
        actor: Actor,
        location: dict[str, float] | None = None,
        reporter: dict[str, str] | None = None,
        external_id: str | None = None,
    ) -> Incident:
        if severity not in SEVERITIES:
            raise InvalidCommand(f"severity must be one of {', '.join(SEVERITIES)}; got {severity!r}")
        if not centers:
            raise InvalidCommand(f"grid {grid!r} belongs to no center")
        incident = cls(
            source=source,
            category=category,
            severity=severity,
            grid=grid,
            centers=centers,
            description=description,
            location=location,
            reporter=reporter,
            actor=actor,
            external_id=external_id,
        )
        if severity == "major":
            # A major hazard goes at once to the township leader, with no timer.
            incident._escalate(actor, "major hazard reported")
        return incident

    # -- invariant helpers -------------------------------------------------

    def allowed_actions(self) -> tuple[str, ...]:
        allowed = ALLOWED[self.status]
        if self.status is Status.VISITED and self.is_dissatisfied():
            return ("reopen",)
        if self.status in SUPERVISABLE:
            allowed = (*allowed, "supervise")
            if can_escalate(self.status, self.escalations):
                allowed = (*allowed, "escalate")
        return allowed

    def is_dissatisfied(self) -> bool:
        return self.satisfaction is not None and self.satisfaction <= DISSATISFIED_AT_OR_BELOW

    def _check(self, action: str) -> None:
        allowed = self.allowed_actions()
        if action not in allowed:
            why = ""
            if action == "close" and self.status is Status.VISITED:
                why = f"the resident rated it {self.satisfaction}, dissatisfied, so it must be reopened"
            raise IllegalTransition(action, self.status, allowed, why)

    # -- step 1: unified intake -------------------------------------------

    def accept(self, *, actor: Actor, note: str = "") -> None:
        self._check("accept")
        self._accepted(actor=actor, centers=self.centers, note=note)

    @event("Accepted")
    def _accepted(self, actor: Actor, centers: list[str], note: str) -> None:
        self.status = Status.ACCEPTED

    def reject(self, *, actor: Actor, reason: str) -> None:
        self._check("reject")
        self._rejected(actor=actor, centers=self.centers, reason=reason)

    @event("Rejected")
    def _rejected(self, actor: Actor, centers: list[str], reason: str) -> None:
        self.status = Status.REJECTED

    def mark_duplicate(self, *, actor: Actor, of: str) -> None:
        self._check("mark_duplicate")
        if of == str(self.id):
            raise InvalidCommand("an incident cannot be a duplicate of itself")
        self._marked_duplicate(actor=actor, centers=self.centers, of=of)

    @event("MarkedDuplicate")
    def _marked_duplicate(self, actor: Actor, centers: list[str], of: str) -> None:
        self.status = Status.DUPLICATE
        self.duplicate_of = of

    # -- step 2: triage and dispatch --------------------------------------

    def dispatch(self, *, actor: Actor, assignee: dict[str, str], due: str, note: str = "") -> None:
        self._check("dispatch")
        self._dispatched(actor=actor, centers=self.centers, assignee=assignee, due=due, note=note)

    @event("Dispatched")
    def _dispatched(
        self, actor: Actor, centers: list[str], assignee: dict[str, str], due: str, note: str
    ) -> None:
        self.status = Status.DISPATCHED
        self.assignee = assignee
        self.due = due

    def return_(self, *, actor: Actor, reason: str) -> None:
        self._check("return")
        self._returned(actor=actor, centers=self.centers, reason=reason)

    @event("Returned")
    def _returned(self, actor: Actor, centers: list[str], reason: str) -> None:
        self.status = Status.RETURNED
        self.assignee = None
        self.due = None

    def transfer(
        self, *, actor: Actor, assignee: dict[str, str], due: str | None = None, reason: str = ""
    ) -> None:
        self._check("transfer")
        if self.assignee == assignee:
            raise InvalidCommand("transfer needs a different assignee than the current one")
        self._transferred(
            actor=actor, centers=self.centers, assignee=assignee, due=due or self.due, reason=reason
        )

    @event("Transferred")
    def _transferred(
        self,
        actor: Actor,
        centers: list[str],
        assignee: dict[str, str],
        due: str | None,
        reason: str,
    ) -> None:
        self.status = Status.DISPATCHED
        self.assignee = assignee
        self.due = due

    # -- step 3: coordinated handling -------------------------------------

    def acknowledge(self, *, actor: Actor) -> None:
        self._check("acknowledge")
        self._acknowledged(actor=actor, centers=self.centers)

    @event("Acknowledged")
    def _acknowledged(self, actor: Actor, centers: list[str]) -> None:
        self.status = Status.ACKNOWLEDGED

    def progress(self, *, actor: Actor, note: str) -> None:
        self._check("progress")
        self._progress_reported(actor=actor, centers=self.centers, note=note)

    @event("ProgressReported")
    def _progress_reported(self, actor: Actor, centers: list[str], note: str) -> None:
        pass

    def resolve(self, *, actor: Actor, outcome: str) -> None:
        self._check("resolve")
        self._resolved(actor=actor, centers=self.centers, outcome=outcome)

    @event("Resolved")
    def _resolved(self, actor: Actor, centers: list[str], outcome: str) -> None:
        self.status = Status.RESOLVED
        self.outcome = outcome

    # -- step 4: tracking and supervision -----------------------------------

    def supervise(self, *, actor: Actor, note: str, by_center: str) -> None:
        """A higher center orders supervision (督办) of the case."""
        self._check("supervise")
        if by_center not in self.centers:
            raise InvalidCommand(
                f"center {by_center!r} is not one of this incident's centers "
                f"({', '.join(self.centers)}); only they can supervise it"
            )
        self._supervised(actor=actor, centers=self.centers, by_center=by_center, note=note)

    @event("Supervised")
    def _supervised(self, actor: Actor, centers: list[str], by_center: str, note: str) -> None:
        self.supervised_by = by_center

    def escalate(self, *, actor: Actor, reason: str) -> None:
        """Move the case one level up the tree (overdue, or on an officer's decision)."""
        self._check("escalate")
        self._escalate(actor, reason)

    def _escalate(self, actor: Actor, reason: str) -> None:
        index = min(self.escalations, len(self.centers) - 1, len(ESCALATION_LEVELS) - 1)
        self._escalated(
            actor=actor,
            centers=self.centers,
            level=ESCALATION_LEVELS[index],
            center=self.centers[index],
            reason=reason,
        )

    @event("Escalated")
    def _escalated(
        self, actor: Actor, centers: list[str], level: str, center: str, reason: str
    ) -> None:
        self.escalations += 1
        self.escalated_to = level

    # -- step 5: closure and return visit ---------------------------------

    def return_visit(self, *, actor: Actor, satisfaction: int, comment: str = "") -> None:
        self._check("return_visit")
        if not 1 <= satisfaction <= 5:
            raise InvalidCommand(f"satisfaction must be 1 to 5; got {satisfaction}")
        self._return_visited(
            actor=actor, centers=self.centers, satisfaction=satisfaction, comment=comment
        )

    @event("ReturnVisited")
    def _return_visited(
        self, actor: Actor, centers: list[str], satisfaction: int, comment: str
    ) -> None:
        self.status = Status.VISITED
        self.satisfaction = satisfaction

    def reopen(self, *, actor: Actor, reason: str = "") -> None:
        self._check("reopen")
        self._reopened(actor=actor, centers=self.centers, reason=reason)

    @event("Reopened")
    def _reopened(self, actor: Actor, centers: list[str], reason: str) -> None:
        self.status = Status.REOPENED
        self.assignee = None
        self.due = None
        self.satisfaction = None
        self.reopen_count += 1

    def close(self, *, actor: Actor, note: str = "") -> None:
        self._check("close")
        self._closed(actor=actor, centers=self.centers, note=note)

    @event("Closed")
    def _closed(self, actor: Actor, centers: list[str], note: str) -> None:
        self.status = Status.CLOSED

    def as_dict(self) -> dict[str, Any]:
        """The incident's current state, as the API shows it."""
        return {
            "id": str(self.id),
            "version": self.version,
            "status": self.status.value,
            "source": self.source,
            "category": self.category,
            "severity": self.severity,
            "grid": self.grid,
            "centers": list(self.centers),
            "description": self.description,
            "location": self.location,
            "reporter": self.reporter,
            "external_id": self.external_id,
            "assignee": self.assignee,
            "due": self.due,
            "duplicate_of": self.duplicate_of,
            "outcome": self.outcome,
            "satisfaction": self.satisfaction,
            "reopen_count": self.reopen_count,
            "escalations": self.escalations,
            "escalated_to": self.escalated_to,
            "supervised_by": self.supervised_by,
            "allowed_actions": [public_name(a) for a in self.allowed_actions()],
            "created_at": self.created_on.isoformat(),
            "updated_at": self.modified_on.isoformat(),
        }
