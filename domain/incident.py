"""The Incident aggregate: one case through the five-step closed loop.

Public command methods check the invariant first, then trigger a private
event-decorated method that only changes state. Every event carries the actor
and the centers the incident belongs to, so a consumer can route it without
any other state.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from eventsourcing.domain import Aggregate, event

from domain.sla_policy import StepClock


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
    Status.RESOLVED: ("return_visit", "visit_attempt"),
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
# The ladder an overdue step climbs from its handler upward: a case a grid worker holds goes
# first to the grid's community, any other to the township (a major case starts there at once).
LADDER = ("community", *ESCALATION_LEVELS)

# The step of the loop each event starts (the SLA policy times it); None: no step is timed.
STEP_AFTER: dict[str, str | None] = {
    "Reported": "accept", "Accepted": "dispatch", "Returned": "dispatch", "Reopened": "dispatch",
    "Dispatched": "acknowledge", "Transferred": "acknowledge", "ReopenedAutomatically": "acknowledge",
    "Acknowledged": "resolve", "Resolved": "visit", "ReturnVisited": None, "Closed": None,
    "Rejected": None, "MarkedDuplicate": None,
}
# Without a policy, the unreachable rule's defaults (the policy's [visit] section).
UNREACHABLE_ATTEMPTS = 3

# A satisfaction at or below this means the resident is dissatisfied: the case must be reopened.
DISSATISFIED_AT_OR_BELOW = 2


def public_name(action: str) -> str:
    """An action as paths, permissions and messages spell it: `mark_duplicate` -> `mark-duplicate`.

    The domain names actions like its methods (`ALLOWED`); everything users see uses this."""
    return action.replace("_", "-")


def next_level(escalated_to: str | None, assignee: dict[str, str] | None,
               community: str | None) -> str | None:
    """The rung above where a case stands; None at the top of the ladder."""
    if escalated_to is None:
        on_grid = assignee is not None and assignee.get("kind") == "grid_worker"
        return "community" if on_grid and community else "township"
    at = LADDER.index(escalated_to) if escalated_to in LADDER else len(LADDER) - 1
    return LADDER[at + 1] if at + 1 < len(LADDER) else None


def _due_text(clock: StepClock | None, category: str, severity: str, step: str) -> str | None:
    return clock.due(category, severity, step) if clock is not None else None


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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


class NotEscalated(DomainError):
    """An overdue escalation that does not apply (any more): the case moved on to another step,
    this rung of the breach was taken already, it is not due yet, or the ladder is climbed."""


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
        step_due: str | None = None,
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
        self.step: str | None = None
        self.step_due: str | None = None
        self.due_reason: str | None = None
        # The breach the ladder climbs for ("step@deadline") and how many rungs it took.
        self.breach: str | None = None
        self.breach_rungs = 0
        self.visit_attempts: list[str] = []
        self.unreachable = False
        self._enter("Reported", step_due)

    def _enter(self, event_name: str, step_due: str | None) -> None:
        """Start the step an event begins, with its due time (from the event)."""
        self.step = STEP_AFTER.get(event_name)
        self.step_due = step_due if self.step is not None else None

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
        clock: StepClock | None = None,
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
            step_due=_due_text(clock, category, severity, "accept"),
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
        if self.status is Status.RESOLVED and self.unreachable:
            allowed = (*allowed, "close")
        if self.status in SUPERVISABLE:
            allowed = (*allowed, "supervise")
            if next_level(self.escalated_to, None, None) is not None:
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
            elif action == "close" and self.status is Status.RESOLVED:
                why = (f"rule return-visit-before-close: a resolved case closes after its return "
                       f"visit, or once the visit is recorded unreachable after the policy's "
                       f"attempts at different times; {len(self.visit_attempts)} recorded, "
                       "not enough")
            raise IllegalTransition(action, self.status, allowed, why)

    # -- step 1: unified intake -------------------------------------------

    def _due(self, clock: StepClock | None, step: str) -> str | None:
        return _due_text(clock, self.category, self.severity, step)

    def accept(self, *, actor: Actor, note: str = "", clock: StepClock | None = None) -> None:
        self._check("accept")
        self._accepted(actor=actor, centers=self.centers, note=note,
                       step_due=self._due(clock, "dispatch"))

    @event("Accepted")
    def _accepted(self, actor: Actor, centers: list[str], note: str,
                  step_due: str | None = None) -> None:
        self.status = Status.ACCEPTED
        self._enter("Accepted", step_due)

    def reject(self, *, actor: Actor, reason: str, clock: StepClock | None = None) -> None:
        self._check("reject")
        self._rejected(actor=actor, centers=self.centers, reason=reason)

    @event("Rejected")
    def _rejected(self, actor: Actor, centers: list[str], reason: str) -> None:
        self.status = Status.REJECTED
        self._enter("Rejected", None)

    def mark_duplicate(self, *, actor: Actor, of: str, clock: StepClock | None = None) -> None:
        self._check("mark_duplicate")
        if of == str(self.id):
            raise InvalidCommand("an incident cannot be a duplicate of itself")
        self._marked_duplicate(actor=actor, centers=self.centers, of=of)

    @event("MarkedDuplicate")
    def _marked_duplicate(self, actor: Actor, centers: list[str], of: str) -> None:
        self.status = Status.DUPLICATE
        self.duplicate_of = of
        self._enter("MarkedDuplicate", None)

    # -- step 2: triage and dispatch --------------------------------------

    def dispatch(
        self, *, actor: Actor, assignee: dict[str, str], due: str | None = None, note: str = "",
        due_reason: str = "", clock: StepClock | None = None,
    ) -> None:
        self._check("dispatch")
        limit = self._due(clock, "resolve")
        if due is None:
            if limit is None:
                raise InvalidCommand("due is required: no SLA policy gives a resolve time")
            due = limit
        self._check_resolve_limit(due, due_reason, clock)
        self._dispatched(actor=actor, centers=self.centers, assignee=assignee, due=due, note=note,
                         due_reason=due_reason.strip(),
                         # Without a policy, the dispatch's own due time is the only deadline.
                         step_due=self._due(clock, "acknowledge") or due)

    def _check_resolve_limit(self, due: str, due_reason: str, clock: StepClock | None) -> None:
        """A deadline may be shorter than the policy's resolve time; a later one needs a reason."""
        limit = self._due(clock, "resolve")
        if limit is not None and _moment(due) > _moment(limit) and not due_reason.strip():
            raise InvalidCommand(
                f"rule sla-resolve-limit: due {due} is later than the SLA policy's resolve time "
                f"{limit} for a {self.severity} {self.category!r} case; shorten it, or give "
                "due_reason to extend it (the reason is recorded)"
            )

    @event("Dispatched")
    def _dispatched(
        self, actor: Actor, centers: list[str], assignee: dict[str, str], due: str, note: str,
        due_reason: str = "", step_due: str | None = None,
    ) -> None:
        self.status = Status.DISPATCHED
        self.assignee = assignee
        self.due = due
        self.due_reason = due_reason or None
        # An event from before the SLA policy times the handler by the dispatch's due.
        self._enter("Dispatched", step_due if step_due is not None else due)

    def return_(self, *, actor: Actor, reason: str, clock: StepClock | None = None) -> None:
        self._check("return")
        self._returned(actor=actor, centers=self.centers, reason=reason,
                       step_due=self._due(clock, "dispatch"))

    @event("Returned")
    def _returned(self, actor: Actor, centers: list[str], reason: str,
                  step_due: str | None = None) -> None:
        self.status = Status.RETURNED
        self.assignee = None
        self.due = None
        self._enter("Returned", step_due)

    def transfer(
        self, *, actor: Actor, assignee: dict[str, str], due: str | None = None, reason: str = "",
        due_reason: str = "", clock: StepClock | None = None,
    ) -> None:
        self._check("transfer")
        if self.assignee == assignee:
            raise InvalidCommand("transfer needs a different assignee than the current one")
        if due is not None:
            self._check_resolve_limit(due, due_reason, clock)
        self._transferred(
            actor=actor, centers=self.centers, assignee=assignee, due=due or self.due, reason=reason,
            step_due=self._due(clock, "acknowledge") or due or self.due,
            due_reason=due_reason.strip() if due is not None else "",
        )

    @event("Transferred")
    def _transferred(
        self,
        actor: Actor,
        centers: list[str],
        assignee: dict[str, str],
        due: str | None,
        reason: str,
        step_due: str | None = None,
        due_reason: str = "",
    ) -> None:
        self.status = Status.DISPATCHED
        self.assignee = assignee
        self.due = due
        if due_reason:
            self.due_reason = due_reason
        self._enter("Transferred", step_due if step_due is not None else due)

    # -- step 3: coordinated handling -------------------------------------

    def acknowledge(self, *, actor: Actor, clock: StepClock | None = None) -> None:
        self._check("acknowledge")
        # The resolve step is due when the dispatch said (the policy's time, or shorter).
        self._acknowledged(actor=actor, centers=self.centers, step_due=self.due)

    @event("Acknowledged")
    def _acknowledged(self, actor: Actor, centers: list[str], step_due: str | None = None) -> None:
        self.status = Status.ACKNOWLEDGED
        self._enter("Acknowledged", step_due if step_due is not None else self.due)

    def progress(self, *, actor: Actor, note: str, clock: StepClock | None = None) -> None:
        self._check("progress")
        self._progress_reported(actor=actor, centers=self.centers, note=note)

    @event("ProgressReported")
    def _progress_reported(self, actor: Actor, centers: list[str], note: str) -> None:
        pass

    def resolve(self, *, actor: Actor, outcome: str, clock: StepClock | None = None) -> None:
        self._check("resolve")
        self._resolved(actor=actor, centers=self.centers, outcome=outcome,
                       step_due=self._due(clock, "visit"))

    @event("Resolved")
    def _resolved(self, actor: Actor, centers: list[str], outcome: str,
                  step_due: str | None = None) -> None:
        self.status = Status.RESOLVED
        self.outcome = outcome
        self.visit_attempts = []
        self.unreachable = False
        self._enter("Resolved", step_due)

    # -- step 4: tracking and supervision -----------------------------------

    def supervise(self, *, actor: Actor, note: str, by_center: str,
                  clock: StepClock | None = None) -> None:
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

    def escalate(self, *, actor: Actor, reason: str, clock: StepClock | None = None) -> None:
        """Move the case one level up the tree (overdue, or on an officer's decision)."""
        self._check("escalate")
        self._escalate(actor, reason)

    def _center_of(self, level: str, community: str | None) -> str:
        if level == "community" and community:
            return community
        index = ESCALATION_LEVELS.index(level) if level in ESCALATION_LEVELS else 0
        return self.centers[min(index, len(self.centers) - 1)]

    def _escalate(self, actor: Actor, reason: str) -> None:
        level = next_level(self.escalated_to, None, None) or ESCALATION_LEVELS[-1]
        self._escalated(actor=actor, centers=self.centers, level=level,
                        center=self._center_of(level, None), reason=reason)

    def escalate_overdue(
        self, *, actor: Actor, step: str, deadline: str, now: datetime, every: Any,
        community: str | None = None,
    ) -> None:
        """Climb one rung of the ladder for a breached step: idempotent on (step, deadline,
        rung), so a second watcher, or one restarted, finds nothing left to do."""
        if step != self.step or deadline != self.step_due:
            raise NotEscalated(f"the case is no longer at step {step!r} due {deadline} "
                               f"(now {self.step!r} due {self.step_due})")
        key = f"{step}@{deadline}"
        rung = self.breach_rungs if self.breach == key else 0
        start = _moment(deadline)
        if now < start + every * rung:
            raise NotEscalated(f"rung {rung + 1} of the {step} breach is due at "
                               f"{(start + every * rung).isoformat()}, not yet")
        level = next_level(self.escalated_to, self.assignee, community)
        if level is None:
            raise NotEscalated("the case is at the top of the ladder already")
        above = next_level(level, self.assignee, community)
        next_at = (start + every * (rung + 1)).isoformat() if above is not None else None
        self._escalated(
            actor=actor, centers=self.centers, level=level, center=self._center_of(level, community),
            reason="overdue", step=step, deadline=deadline,
            late=int((now - start).total_seconds()), rung=rung + 1, next_at=next_at,
        )

    @event("Escalated")
    def _escalated(
        self, actor: Actor, centers: list[str], level: str, center: str, reason: str,
        step: str | None = None, deadline: str | None = None, late: int | None = None,
        rung: int | None = None, next_at: str | None = None,
    ) -> None:
        self.escalations += 1
        self.escalated_to = level
        if step is not None and rung is not None:
            self.breach = f"{step}@{deadline}"
            self.breach_rungs = rung

    # -- step 5: closure and return visit ---------------------------------

    def return_visit(self, *, actor: Actor, satisfaction: int, comment: str = "",
                     clock: StepClock | None = None) -> None:
        self._check("return_visit")
        if not 1 <= satisfaction <= 5:
            raise InvalidCommand(f"satisfaction must be 1 to 5; got {satisfaction}")
        self._return_visited(
            actor=actor, centers=self.centers, satisfaction=satisfaction, comment=comment
        )
        if self.is_dissatisfied() and self.assignee is not None:
            # Dissatisfied: back to the same assignee with the resident's comment, at once.
            self._reopened_automatically(
                actor=actor, centers=self.centers, assignee=self.assignee, reason=comment,
                satisfaction=satisfaction, step_due=self._due(clock, "acknowledge"),
            )

    @event("ReturnVisited")
    def _return_visited(
        self, actor: Actor, centers: list[str], satisfaction: int, comment: str
    ) -> None:
        self.status = Status.VISITED
        self.satisfaction = satisfaction
        self._enter("ReturnVisited", None)

    @event("ReopenedAutomatically")
    def _reopened_automatically(
        self, actor: Actor, centers: list[str], assignee: dict[str, str], reason: str,
        satisfaction: int, step_due: str | None = None,
    ) -> None:
        self.status = Status.DISPATCHED
        self.assignee = assignee
        self.satisfaction = None
        self.reopen_count += 1
        self._enter("ReopenedAutomatically", step_due)

    def visit_attempt(self, *, actor: Actor, at: str, note: str = "",
                      clock: StepClock | None = None) -> None:
        """Record a return-visit call that did not reach the resident, made at `at`."""
        self._check("visit_attempt")
        moment = _moment(at)
        if clock is not None and moment > clock.now:
            raise InvalidCommand(f"at {at} is in the future; an attempt is recorded after it was made")
        needed = clock.policy.unreachable_attempts if clock else UNREACHABLE_ATTEMPTS
        gap = clock.policy.attempt_gap if clock else None
        times = sorted(_moment(t) for t in (*self.visit_attempts, at))
        counted = 0
        last: datetime | None = None
        for t in times:  # attempts "at different times": at least the policy's gap apart
            if last is None or (t != last and (gap is None or t - last >= gap)):
                counted += 1
                last = t
        self._visit_attempted(actor=actor, centers=self.centers, at=at, note=note,
                              counted=counted, needed=needed)

    @event("VisitAttempted")
    def _visit_attempted(self, actor: Actor, centers: list[str], at: str, note: str,
                         counted: int, needed: int) -> None:
        self.visit_attempts = [*self.visit_attempts, at]
        self.unreachable = counted >= needed

    def reopen(self, *, actor: Actor, reason: str = "", clock: StepClock | None = None) -> None:
        self._check("reopen")
        self._reopened(actor=actor, centers=self.centers, reason=reason,
                       step_due=self._due(clock, "dispatch"))

    @event("Reopened")
    def _reopened(self, actor: Actor, centers: list[str], reason: str,
                  step_due: str | None = None) -> None:
        self.status = Status.REOPENED
        self.assignee = None
        self.due = None
        self.satisfaction = None
        self.reopen_count += 1
        self._enter("Reopened", step_due)

    def close(self, *, actor: Actor, note: str = "", clock: StepClock | None = None) -> None:
        self._check("close")
        self._closed(actor=actor, centers=self.centers, note=note,
                     unreachable=self.status is Status.RESOLVED)

    @event("Closed")
    def _closed(self, actor: Actor, centers: list[str], note: str,
                unreachable: bool = False) -> None:
        self.status = Status.CLOSED
        self._enter("Closed", None)

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
            "step": self.step,
            "step_due": self.step_due,
            "due_reason": self.due_reason,
            "visit_attempts": len(self.visit_attempts),
            "allowed_actions": [public_name(a) for a in self.allowed_actions()],
            "created_at": self.created_on.isoformat(),
            "updated_at": self.modified_on.isoformat(),
        }
