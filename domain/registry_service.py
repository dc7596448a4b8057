"""Commands on the grid registry, saved in the incidents' event store (same application).

Every command is idempotent where a repeat is harmless (registering an unchanged party,
appointing a worker again, the same training twice): it saves nothing and says so, which is
what makes `linkage registry import` of the same file twice change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.application import VersionConflict, require_actor
from domain.directory import Directory
from domain.incident import Actor
from domain.jurisdiction import Jurisdiction
from domain.registry import (
    RESIDENT_KINDS,
    AlreadyRegistered,
    InvalidField,
    Party,
    Resident,
    Unregistered,
    Worker,
    check_choice,
    check_date,
    check_id_number,
    check_phone,
    check_text,
    party_uuid,
    resident_uuid,
    worker_uuid,
)

A = TypeVar("A", bound=Aggregate)


class RegistryService:
    """Registers parties, grid workers and residents in `app`'s event store."""

    def __init__(self, app: Application[UUID], jurisdiction: Jurisdiction) -> None:
        self.app = app
        self.jurisdiction = jurisdiction
        self._units: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    # -- helpers -------------------------------------------------------------

    def _get(self, uuid: UUID, kind: type[A]) -> A | None:
        try:
            found: Aggregate = self.app.repository.get(uuid)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, kind) else None

    def save(self, *aggregates: Aggregate) -> None:
        try:
            self.app.save(*aggregates)
        except IntegrityError:
            raise VersionConflict("the registry entry was changed by another command at the "
                                  "same time; retry") from None

    def grid_units(self, grid: object, field: str = "grid") -> tuple[list[str], list[str]]:
        """(units from the grid up to the city, centers) of a grid, or a 422 naming `field`."""
        known = self._units.get(grid) if isinstance(grid, str) else None
        if known is not None:  # the tree is immutable: one walk per grid, not per resident
            return list(known[0]), list(known[1])
        unit = self.jurisdiction.get(grid) if isinstance(grid, str) else None
        if unit is None or unit.level != "grid":
            raise InvalidField(field, f"{grid!r} is not a grid of the jurisdiction tree")
        assert isinstance(grid, str)
        units = [grid, *(u.id for u in self.jurisdiction.ancestors(grid))]
        centers = list(self.jurisdiction.centers_for(grid))
        self._units[grid] = (tuple(units), tuple(centers))
        return units, centers

    def check_serves(self, serves: object) -> list[str]:
        if not isinstance(serves, list) or not serves or len(serves) > 64:
            raise InvalidField("serves", "expected a list of 1 to 64 center ids")
        for center in serves:
            if not isinstance(center, str) or center not in self.jurisdiction \
                    or not self.jurisdiction.is_center(center):
                raise InvalidField("serves", f"{center!r} is not a city, district or township "
                                   "of the jurisdiction tree")
        return list(dict.fromkeys(serves))

    # -- parties -------------------------------------------------------------

    def register_party(self, *, actor: Actor, party_id: object, kind: object, name: object,
                       serves: object, categories: object) -> tuple[Party, bool]:
        """Register or update a party; (party, whether anything was saved)."""
        require_actor(actor)
        party = Party.register(party_id=str(party_id) if isinstance(party_id, str) else "",
                               kind=str(kind), name=name, serves=self.check_serves(serves),
                               categories=categories, actor=actor) \
            if isinstance(party_id, str) else None
        if party is None:
            raise InvalidField("id", "expected a party id string")
        existing = self._get(party.id, Party)
        if existing is None:
            self.save(party)
            return party, True
        if existing.same_as(party.name, party.serves, party.categories):
            return existing, False
        existing.change(name=party.name, serves=party.serves, categories=party.categories,
                        actor=actor)
        self.save(existing)
        return existing, True

    def party(self, kind: str, party_id: str) -> Party | None:
        return self._get(party_uuid(kind, party_id), Party)

    # -- grid workers -------------------------------------------------------

    def worker(self, worker_id: str) -> Worker | None:
        return self._get(worker_uuid(worker_id), Worker)

    def _worker(self, worker_id: object) -> Worker:
        found = self.worker(worker_id) if isinstance(worker_id, str) else None
        if found is None:
            raise Unregistered(f"grid worker {worker_id!r} is not registered")
        return found

    def appoint_worker(self, *, actor: Actor, worker_id: object, name: object,
                       employment: object) -> tuple[Worker, bool]:
        require_actor(actor)
        worker = Worker.appoint(worker_id=worker_id, name=name, employment=employment,
                                actor=actor)
        existing = self._get(worker.id, Worker)
        if existing is not None:
            if existing.released:
                raise AlreadyRegistered(f"grid worker {worker.worker_id!r} was released; "
                                        "a released id is not reused")
            return existing, False
        self.save(worker)
        return worker, True

    def assign_worker(self, *, actor: Actor, worker_id: object, grid: object,
                      lead: bool = False) -> tuple[Worker, bool]:
        require_actor(actor)
        self.grid_units(grid)
        worker = self._worker(worker_id)
        changed = worker.assign(grid=str(grid), lead=bool(lead), actor=actor)
        if changed:
            self.save(worker)
        return worker, changed

    def unassign_worker(self, *, actor: Actor, worker_id: object, grid: object) -> Worker:
        require_actor(actor)
        worker = self._worker(worker_id)
        worker.unassign(grid=str(grid), actor=actor)
        self.save(worker)
        return worker

    def train_worker(self, *, actor: Actor, worker_id: object, course: object,
                     on: object) -> tuple[Worker, bool]:
        require_actor(actor)
        worker = self._worker(worker_id)
        changed = worker.complete_training(course=course, on=on, actor=actor)
        if changed:
            self.save(worker)
        return worker, changed

    def release_worker(self, *, actor: Actor, worker_id: object, reason: object) -> Worker:
        require_actor(actor)
        worker = self._worker(worker_id)
        worker.release(reason=reason, actor=actor)
        self.save(worker)
        return worker

    # -- residents -----------------------------------------------------------

    def resident(self, resident_id: str) -> Resident:
        try:
            uuid = UUID(resident_id)
        except ValueError:
            raise Unregistered(f"resident {resident_id!r} not found; ids are UUIDs") from None
        found = self._get(uuid, Resident)
        if found is None:
            raise Unregistered(f"resident {resident_id!r} not found")
        return found

    def resident_by_number(self, id_number: str) -> Resident | None:
        return self._get(resident_uuid(id_number), Resident)

    def register_resident(self, *, actor: Actor, id_number: object, name: object, phone: object,
                          household: object, kind: object, grid: object,
                          arrived: object) -> tuple[Resident, bool]:
        """Register a person on arrival; (resident, saved). An identical registration in the
        same grid saves nothing; a registration elsewhere is AlreadyRegistered (use move)."""
        require_actor(actor)
        fields = {
            "id_number": check_id_number(id_number),
            "name": check_text(name, "name", 60),
            "phone": check_phone(phone),
            "household": check_text(household, "household", 120),
            "kind": check_choice(kind, "kind", RESIDENT_KINDS),
            "arrived": check_date(arrived, "arrived"),
        }
        units, centers = self.grid_units(grid)
        existing = self._get(resident_uuid(fields["id_number"]), Resident)
        if existing is None:
            resident = Resident(grid=str(grid), units=units, centers=centers, actor=actor,
                                **fields)
            try:
                self.app.save(resident)
            except IntegrityError:
                raise AlreadyRegistered("this person was registered by another command at the "
                                        "same time; use move to change their grid") from None
            return resident, True
        if existing.registered and existing.grid == grid and all(
                (existing.as_dict()[k] == v) for k, v in fields.items() if k != "id_number"):
            return existing, False  # the same registration again: nothing to do
        fields.pop("id_number")
        existing.register_again(grid=str(grid), units=units, centers=centers, actor=actor,
                                **fields)
        self.save(existing)
        return existing, True

    def move_resident(self, resident_id: str, *, actor: Actor, grid: object, household: object,
                      on: object) -> Resident:
        require_actor(actor)
        resident = self.resident(resident_id)
        units, centers = self.grid_units(grid)
        resident.move(grid=str(grid), units=units, centers=centers,
                      household=check_text(household, "household", 120),
                      on=check_date(on, "date"), actor=actor)
        self.save(resident)
        return resident

    def deregister_resident(self, resident_id: str, *, actor: Actor, reason: object,
                            on: object) -> Resident:
        require_actor(actor)
        resident = self.resident(resident_id)
        resident.deregister(reason=reason, on=check_date(on, "date"), actor=actor)
        self.save(resident)
        return resident

    def correct_resident(self, resident_id: str, *, actor: Actor,
                         fields: dict[str, Any]) -> tuple[Resident, bool]:
        require_actor(actor)
        resident = self.resident(resident_id)
        checked: dict[str, str] = {}
        for key, value in fields.items():
            if key == "name":
                checked[key] = check_text(value, "name", 60)
            elif key == "phone":
                checked[key] = check_phone(value)
            elif key == "household":
                checked[key] = check_text(value, "household", 120)
            elif key == "kind":
                checked[key] = check_choice(value, "kind", RESIDENT_KINDS)
            else:
                raise InvalidField(key, "not a correctable field; expected name, phone, "
                                   "household or kind (use move to change the grid)")
        if not checked:
            raise InvalidField("name", "nothing to correct; give name, phone, household or kind")
        changed = resident.correct(actor=actor, **checked)
        if changed:
            self.save(resident)
        return resident, changed

    # -- the seed ------------------------------------------------------------

    def seed(self, directory: Directory, known_parties: Iterable[str],
             known_workers: Iterable[str], actor: Actor) -> int:
        """Register the directory file's parties and grid workers (each worker appointed full
        time and assigned as the lead of its grid) that the registry does not know yet, in one
        transaction; the number of entries registered. Another process seeding at the same
        time wins and this one registers nothing."""
        parties, workers = set(known_parties), set(known_workers)
        new: list[Aggregate] = []
        for party in directory.parties:
            uuid = party_uuid(party.kind, party.id)
            if str(uuid) not in parties:
                new.append(Party(party_id=party.id, kind=party.kind, name=party.name.as_dict(),
                                 serves=list(party.serves), categories=list(party.categories),
                                 actor=actor))
        for entry in directory.grid_workers:
            if entry.id not in workers:
                worker = Worker(worker_id=entry.id, name=entry.name.as_dict(),
                                employment="full_time", actor=actor)
                worker.assign(grid=entry.grid, lead=True, actor=actor)
                new.append(worker)
        if new:
            try:
                self.app.save(*new)
            except IntegrityError:
                return 0
        return len(new)


def parse_lead(value: object) -> bool:
    """A CSV or JSON lead flag."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "0", "false", "no", "n"):
        return False
    if text in ("1", "true", "yes", "y", "lead"):
        return True
    raise InvalidField("lead", f"expected true or false; got {value!r}")


__all__: Sequence[str] = ["RegistryService", "parse_lead"]
