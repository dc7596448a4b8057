"""Supervision orders as an application service, on the incidents' event store (one log, one
seal chain, one replay): issue, acknowledge, fulfil, and the watcher's overdue marking."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.application import IncidentService, NotFound, VersionConflict, require_actor
from domain.incident import Actor, InvalidCommand
from domain.supervision_order import DEPARTMENT_PREFIX, SupervisionOrder


class SupervisionOrders:
    """Orders from a center to a lower center or a department."""

    def __init__(self, app: IncidentService, centers_for: Callable[[str], Sequence[str]],
                 clock: Callable[[], datetime] | None = None) -> None:
        self.app = app
        # center id -> that center and the centers above it, nearest first; KeyError if unknown
        self._centers_for = centers_for
        self._clock = clock

    def now(self) -> datetime:
        return (self._clock or self.app.clock)()

    def chain(self, center: str) -> list[str]:
        try:
            return list(self._centers_for(center))
        except KeyError:
            raise InvalidCommand(f"{center!r} is not a center of the jurisdiction tree; "
                                 "expected a city, district or township id") from None

    def centers_of(self, issuer: str, addressee: str) -> list[str]:
        """Who sees an order: the issuer's chain, and a center addressee's own."""
        issuer_chain = self.chain(issuer)
        if addressee.startswith(DEPARTMENT_PREFIX):
            if len(addressee) == len(DEPARTMENT_PREFIX):
                raise InvalidCommand("a department addressee is 'department:<id>'")
            return issuer_chain
        chain = self.chain(addressee)
        if issuer not in chain or addressee == issuer:
            raise InvalidCommand(f"center {issuer} can order only a center below it or a "
                                 f"department; {addressee} is not below {issuer}")
        return chain

    def escalation_target(self, order: SupervisionOrder) -> str | None:
        """One level further than the order went: the issuer's parent center, which now sees
        the unmet order too; None when the city issued it."""
        above = self.chain(order.issuer)[1:]
        return above[0] if above else None

    def issue(self, *, actor: Actor, issuer: str, addressee: str, deadline: str, note: str,
              incident: str | None = None) -> SupervisionOrder:
        require_actor(actor)
        order = SupervisionOrder.issue(actor=actor, centers=self.centers_of(issuer, addressee),
                                       issuer=issuer, addressee=addressee, deadline=deadline,
                                       note=note, now=self.now(), incident=incident)
        self.app.save(order)
        return order

    def get(self, order_id: str) -> SupervisionOrder:
        try:
            uuid = UUID(order_id)
        except ValueError:
            raise NotFound(f"order {order_id!r} not found; ids are UUIDs") from None
        try:
            order: object = self.app.repository.get(uuid)
        except AggregateNotFoundError:
            raise NotFound(f"order {order_id!r} not found") from None
        if not isinstance(order, SupervisionOrder):
            raise NotFound(f"{order_id!r} is not a supervision order")
        return order

    def _save(self, order: SupervisionOrder) -> SupervisionOrder:
        try:
            self.app.save(order)
        except IntegrityError:
            raise VersionConflict(f"order {order.id} was changed by another command at the same "
                                  "time; reload and retry") from None
        return order

    def acknowledge(self, order_id: str, *, actor: Actor) -> SupervisionOrder:
        require_actor(actor)
        order = self.get(order_id)
        order.acknowledge(actor=actor)
        return self._save(order)

    def fulfil(self, order_id: str, *, actor: Actor, what: str) -> SupervisionOrder:
        require_actor(actor)
        order = self.get(order_id)
        order.fulfil(actor=actor, what=what, now=self.now())
        return self._save(order)

    def mark_overdue(self, order_id: str, *, actor: Actor, now: datetime) -> SupervisionOrder:
        order = self.get(order_id)
        order.mark_overdue(actor=actor, now=now, escalate_to=self.escalation_target(order))
        return self._save(order)
