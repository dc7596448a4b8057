"""The supervision order (督办单): a higher center orders a lower center or a department to act
by a deadline. Its own record, with its own events: issued, acknowledged, fulfilled (with what
was done), overdue, escalated. An order unmet at its deadline is marked overdue and escalated one
level further (to the issuer's parent center, which sees it from then on), and counts
against the addressee in the assessment (projections/assessment.py).

Every event carries `centers`: the centers that see the order (the issuer's and the addressee's
chains), so consumers route it like an incident's events.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.incident import Actor, DomainError, InvalidCommand


class OrderStatus(StrEnum):
    ISSUED = "issued"
    ACKNOWLEDGED = "acknowledged"
    FULFILLED = "fulfilled"


ORDER_ACTIONS = ("acknowledge", "fulfil")
DEPARTMENT_PREFIX = "department:"


class OrderRefused(DomainError):
    """An order command the order's state does not allow (HTTP 409)."""


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class SupervisionOrder(Aggregate):
    """One order from a center to a lower center or a department."""

    @event("Issued")
    def __init__(
        self, *, actor: Actor, centers: list[str], issuer: str, addressee: str, deadline: str,
        note: str, incident: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.addressee = addressee
        self.deadline = deadline
        self.note = note
        self.incident = incident
        self.centers = list(centers)
        self.status = OrderStatus.ISSUED
        self.overdue = False
        self.escalated_to: str | None = None
        self.fulfilment: str | None = None
        self.on_time: bool | None = None
        self.issued_by = actor

    @classmethod
    def issue(
        cls, *, actor: Actor, centers: list[str], issuer: str, addressee: str, deadline: str,
        note: str, now: datetime, incident: str | None = None,
    ) -> SupervisionOrder:
        if _moment(deadline) <= now:
            raise InvalidCommand(f"deadline {deadline} is not in the future; an order gives "
                                 "its addressee time to act")
        if addressee == issuer:
            raise InvalidCommand("an order goes to a lower center or a department, not to the "
                                 "issuing center itself")
        return cls(actor=actor, centers=centers, issuer=issuer, addressee=addressee,
                   deadline=deadline, note=note, incident=incident)

    def _open(self, action: str) -> None:
        if self.status is OrderStatus.FULFILLED:
            raise OrderRefused(f"cannot {action} order {self.id}: it was fulfilled already")

    def acknowledge(self, *, actor: Actor) -> None:
        self._open("acknowledge")
        if self.status is OrderStatus.ACKNOWLEDGED:
            raise OrderRefused(f"order {self.id} was acknowledged already")
        self._acknowledged(actor=actor, centers=self.centers)

    @event("Acknowledged")
    def _acknowledged(self, actor: Actor, centers: list[str]) -> None:
        self.status = OrderStatus.ACKNOWLEDGED

    def fulfil(self, *, actor: Actor, what: str, now: datetime) -> None:
        """Report what was done; on time when before the deadline."""
        self._open("fulfil")
        self._fulfilled(actor=actor, centers=self.centers, what=what,
                        on_time=now <= _moment(self.deadline))

    @event("Fulfilled")
    def _fulfilled(self, actor: Actor, centers: list[str], what: str, on_time: bool) -> None:
        self.status = OrderStatus.FULFILLED
        self.fulfilment = what
        self.on_time = on_time

    def mark_overdue(self, *, actor: Actor, now: datetime, escalate_to: str | None) -> None:
        """The deadline passed unmet: overdue, and escalated one level further (idempotent:
        an order is marked overdue once)."""
        self._open("mark overdue")
        if self.overdue:
            raise OrderRefused(f"order {self.id} is overdue already")
        late = now - _moment(self.deadline)
        if late.total_seconds() < 0:
            raise OrderRefused(f"order {self.id} is due at {self.deadline}, not yet")
        self._overdue(actor=actor, centers=self.centers, late=int(late.total_seconds()))
        if escalate_to is not None:
            centers = self.centers if escalate_to in self.centers else [*self.centers, escalate_to]
            self._escalated(actor=actor, centers=centers, to=escalate_to)

    @event("Overdue")
    def _overdue(self, actor: Actor, centers: list[str], late: int) -> None:
        self.overdue = True

    @event("Escalated")
    def _escalated(self, actor: Actor, centers: list[str], to: str) -> None:
        self.escalated_to = to
        self.centers = list(centers)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "version": self.version,
            "issuer": self.issuer,
            "addressee": self.addressee,
            "deadline": self.deadline,
            "note": self.note,
            "incident": self.incident,
            "status": self.status.value,
            "overdue": self.overdue,
            "escalated_to": self.escalated_to,
            "fulfilment": self.fulfilment,
            "on_time": self.on_time,
            "centers": list(self.centers),
            "issued_at": self.created_on.isoformat(),
            "updated_at": self.modified_on.isoformat(),
        }
