"""The grid registry: co-governance parties, grid workers and residents, as aggregates.

Each entry is an aggregate in the incidents' event store, with a deterministic id (uuid5 of
its natural key: a party's kind and id, a worker's id, a resident's ID number), so a second
registration of the same key is found, not duplicated, and two racing registrations meet the
store's uniqueness. Resident events carry the grid's units (grid, community, township,
district, city) and the centers they show on, so the center views can count population
without any other state (projections/population.py).

Pure code: no I/O. The application service is :class:`RegistryService` (registry_service.py).
"""

from __future__ import annotations

import re
from datetime import date
from operator import mul
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.directory import MAX_CATEGORIES, MAX_ID, MAX_NAME, PARTY_KINDS
from domain.incident import Actor, DomainError, InvalidCommand

NAMESPACE = uuid5(NAMESPACE_URL, "https://linkage.invalid/registry")
EMPLOYMENTS = ("full_time", "part_time")
RESIDENT_KINDS = ("permanent", "floating", "rental")
MAX_TRAININGS = 200  # a worker's training record; more is a mistake, not a career
MAX_TEXT = 200
# GB 11643-1999: the 18th character of a mainland resident ID number is a check digit.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^[1-9]\d{16}[\dX]$")
_PHONE = re.compile(r"^\+?\d[\d-]{4,18}\d$")


class InvalidField(InvalidCommand):
    """A field that is wrong; `field` names it (the HTTP answer is a 422 naming it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class AlreadyRegistered(DomainError):
    """A person (or entry) registered already; `where` is the grid they are registered in."""

    def __init__(self, message: str, where: str | None = None,
                 resident: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.resident = resident  # the resident's id, for the move


class Unregistered(DomainError):
    """A registry entry that does not exist."""


class Inactive(DomainError):
    """A registry entry that exists but is no longer active (a released worker, a person
    deregistered): the command does not apply to it now (409)."""


def id_check_digit(first17: str) -> str:
    """The check character of an 18-digit ID number's first 17 digits."""
    total = sum(map(mul, map(int, first17), _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def check_id_number(value: object, field: str = "id_number") -> str:
    """A valid mainland ID number (upper-case X), or InvalidField saying what is wrong.

    The message never repeats the number: error answers are personal data too."""
    if not isinstance(value, str):
        raise InvalidField(field, "expected an 18-character ID number string")
    number = value.strip().upper()
    if not _ID_SHAPE.match(number):
        raise InvalidField(field, f"expected 18 characters (17 digits and a digit or X); "
                           f"got {len(number)} characters or a non-digit")
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidField(field, "characters 7-14 are not a valid birth date") from None
    if id_check_digit(number[:17]) != number[17]:
        raise InvalidField(field, "the check digit (18th character) does not match the first 17 "
                           "digits (GB 11643)")
    return number


def check_phone(value: object, field: str = "phone") -> str:
    if not isinstance(value, str) or not _PHONE.match(value.strip()):
        raise InvalidField(field, "expected a phone number of 6 to 20 digits (+ and - allowed)")
    return value.strip()


def check_text(value: object, field: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(field, "expected a non-empty string")
    if len(value) > limit:
        raise InvalidField(field, f"{len(value)} characters; at most {limit}")
    return value.strip()


def check_choice(value: object, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidField(field, f"expected one of {', '.join(choices)}; got {value!r}")
    assert isinstance(value, str)
    return value


def check_date(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidField(field, "expected a date YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise InvalidField(field, f"expected a date YYYY-MM-DD; got {value!r}") from None
    if not 2000 <= parsed.year <= 2100:
        raise InvalidField(field, f"expected a date between 2000 and 2100; got {value}")
    return parsed.isoformat()


def check_name(value: object, field: str = "name") -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != {"zh", "en"}:
        raise InvalidField(field, 'expected {"zh": ..., "en": ...}')
    return {"zh": check_text(value["zh"], f"{field}.zh", MAX_NAME),
            "en": check_text(value["en"], f"{field}.en", MAX_NAME)}


def party_uuid(kind: str, party_id: str) -> UUID:
    """A party's aggregate id: departments and the other parties are named apart, as
    assignees name them (domain/directory.py)."""
    assignee_kind = "department" if kind == "department" else "party"
    return uuid5(NAMESPACE, f"party:{assignee_kind}:{party_id}")


def worker_uuid(worker_id: str) -> UUID:
    return uuid5(NAMESPACE, f"worker:{worker_id}")


def resident_uuid(id_number: str) -> UUID:
    return uuid5(NAMESPACE, f"resident:{id_number}")


class Party(Aggregate):
    """A department or co-governance party that cases may be dispatched to."""

    @staticmethod
    def create_id(party_id: str, kind: str, **_: Any) -> UUID:
        return party_uuid(kind, party_id)

    @event("Registered")
    def __init__(self, party_id: str, kind: str, name: dict[str, str], serves: list[str],
                 categories: list[str], actor: Actor) -> None:
        self.party_id = party_id
        self.kind = kind
        self.name = name
        self.serves = serves
        self.categories = categories
        self.retired = False

    @classmethod
    def register(cls, *, party_id: str, kind: str, name: object, serves: list[str],
                 categories: object, actor: Actor) -> Party:
        party_id = check_text(party_id, "id", MAX_ID)
        kind = check_choice(kind, "kind", PARTY_KINDS)
        return cls(party_id=party_id, kind=kind, name=check_name(name), serves=list(serves),
                   categories=check_categories(categories), actor=actor)

    def same_as(self, name: dict[str, str], serves: list[str], categories: list[str]) -> bool:
        return (not self.retired and self.name == name and self.serves == serves
                and self.categories == categories)

    @event("Changed")
    def change(self, name: dict[str, str], serves: list[str], categories: list[str],
               actor: Actor) -> None:
        self.name, self.serves, self.categories = name, serves, categories
        self.retired = False

    @event("Retired")
    def retire(self, reason: str, actor: Actor) -> None:
        self.retired = True


def check_categories(value: object) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CATEGORIES:
        raise InvalidField("categories", f"expected a list of 1 to {MAX_CATEGORIES} categories")
    return [check_text(c, "categories[]", MAX_ID) for c in value]


class Worker(Aggregate):
    """A grid worker: appointed, assigned to grids (lead of some), trained, released."""

    @staticmethod
    def create_id(worker_id: str, **_: Any) -> UUID:
        return worker_uuid(worker_id)

    @event("Appointed")
    def __init__(self, worker_id: str, name: dict[str, str], employment: str,
                 actor: Actor) -> None:
        self.worker_id = worker_id
        self.name = name
        self.employment = employment
        self.grids: list[str] = []
        self.lead_of: list[str] = []
        self.trainings: list[dict[str, str]] = []
        self.released = False

    @classmethod
    def appoint(cls, *, worker_id: object, name: object, employment: object,
                actor: Actor) -> Worker:
        return cls(worker_id=check_text(worker_id, "id", MAX_ID), name=check_name(name),
                   employment=check_choice(employment, "employment", EMPLOYMENTS), actor=actor)

    def _active(self) -> None:
        if self.released:
            raise Inactive(f"grid worker {self.worker_id!r} was released")

    def assign(self, *, grid: str, lead: bool, actor: Actor) -> bool:
        """Assign to a grid (as its lead or not); False when already so assigned."""
        self._active()
        if grid in self.grids and (grid in self.lead_of) == lead:
            return False
        self._assigned(grid=grid, lead=lead, actor=actor)
        return True

    @event("Assigned")
    def _assigned(self, grid: str, lead: bool, actor: Actor) -> None:
        if grid not in self.grids:
            self.grids.append(grid)
        if lead and grid not in self.lead_of:
            self.lead_of.append(grid)
        if not lead and grid in self.lead_of:
            self.lead_of.remove(grid)

    def unassign(self, *, grid: str, actor: Actor) -> None:
        self._active()
        if grid not in self.grids:
            raise InvalidField("grid", f"grid worker {self.worker_id!r} does not serve {grid}")
        self._unassigned(grid=grid, actor=actor)

    @event("Unassigned")
    def _unassigned(self, grid: str, actor: Actor) -> None:
        self.grids.remove(grid)
        if grid in self.lead_of:
            self.lead_of.remove(grid)

    def complete_training(self, *, course: object, on: object, actor: Actor) -> bool:
        self._active()
        record = {"course": check_text(course, "course"), "date": check_date(on, "date")}
        if record in self.trainings:
            return False
        if len(self.trainings) >= MAX_TRAININGS:
            raise InvalidField("course", f"a worker's record holds at most {MAX_TRAININGS} "
                               "trainings")
        self._trained(course=record["course"], date=record["date"], actor=actor)
        return True

    @event("TrainingCompleted")
    def _trained(self, course: str, date: str, actor: Actor) -> None:
        self.trainings.append({"course": course, "date": date})

    def release(self, *, reason: object, actor: Actor) -> None:
        self._active()
        self._released(reason=check_text(reason, "reason"), actor=actor)

    @event("Released")
    def _released(self, reason: str, actor: Actor) -> None:
        self.released = True
        self.grids = []
        self.lead_of = []


class Resident(Aggregate):
    """A person registered in a grid (人来登记), moved, deregistered on departure (人去注销).

    `units` is the grid's chain up to the city; `centers` the centers it shows on."""

    @staticmethod
    def create_id(id_number: str, **_: Any) -> UUID:
        return resident_uuid(id_number)

    @event("Registered")
    def __init__(self, id_number: str, name: str, phone: str, household: str, kind: str,
                 grid: str, units: list[str], centers: list[str], arrived: str,
                 actor: Actor) -> None:
        self.id_number = id_number
        self.person_name = name
        self.phone = phone
        self.household = household
        self.kind = kind
        self.grid = grid
        self.units = units
        self.centers = centers
        self.arrived = arrived
        self.registered = True

    def as_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "id_number": self.id_number, "name": self.person_name,
                "phone": self.phone, "household": self.household, "kind": self.kind,
                "grid": self.grid if self.registered else None, "arrived": self.arrived,
                "registered": self.registered, "version": self.version}

    def register_again(self, *, name: str, phone: str, household: str, kind: str, grid: str,
                       units: list[str], centers: list[str], arrived: str,
                       actor: Actor) -> None:
        if self.registered:
            raise AlreadyRegistered("this person is already registered in grid "
                                    f"{self.grid}; use move to change their grid", self.grid,
                                    str(self.id))
        self._reregistered(name=name, phone=phone, household=household, kind=kind, grid=grid,
                           units=units, centers=centers, arrived=arrived, actor=actor)

    @event("Reregistered")
    def _reregistered(self, name: str, phone: str, household: str, kind: str, grid: str,
                      units: list[str], centers: list[str], arrived: str,
                      actor: Actor) -> None:
        self.person_name, self.phone, self.household, self.kind = name, phone, household, kind
        self.grid, self.units, self.centers, self.arrived = grid, units, centers, arrived
        self.registered = True

    def _check_registered(self) -> None:
        if not self.registered:
            raise Inactive("this person is deregistered; register them again on arrival")

    def move(self, *, grid: str, units: list[str], centers: list[str], household: str,
             on: str, actor: Actor) -> None:
        self._check_registered()
        if grid == self.grid:
            raise InvalidField("grid", f"the person is registered in {grid} already")
        touched = list(dict.fromkeys([*self.centers, *centers]))
        self._moved(from_grid=self.grid, from_units=self.units, grid=grid, units=units,
                    centers=touched, to_centers=centers, household=household, kind=self.kind,
                    date=on, actor=actor)

    @event("Moved")
    def _moved(self, from_grid: str, from_units: list[str], grid: str, units: list[str],
               centers: list[str], to_centers: list[str], household: str, kind: str, date: str,
               actor: Actor) -> None:
        self.grid, self.units, self.centers, self.household = grid, units, to_centers, household

    def deregister(self, *, reason: object, on: str, actor: Actor) -> None:
        self._check_registered()
        self._deregistered(reason=check_text(reason, "reason"), units=self.units,
                           centers=self.centers, kind=self.kind, date=on, actor=actor)

    @event("Deregistered")
    def _deregistered(self, reason: str, units: list[str], centers: list[str], kind: str,
                      date: str, actor: Actor) -> None:
        self.registered = False

    def correct(self, *, actor: Actor, **fields: str) -> bool:
        """Correct name, phone, household or kind; False when nothing differs."""
        self._check_registered()
        current = {"name": self.person_name, "phone": self.phone, "household": self.household,
                   "kind": self.kind}
        changed = {k: v for k, v in fields.items() if current[k] != v}
        if not changed:
            return False
        self._corrected(changed=changed, old_kind=self.kind,
                        kind=changed.get("kind", self.kind), units=self.units,
                        centers=self.centers, actor=actor)
        return True

    @event("Corrected")
    def _corrected(self, changed: dict[str, str], old_kind: str, kind: str, units: list[str],
                   centers: list[str], actor: Actor) -> None:
        self.person_name = changed.get("name", self.person_name)
        self.phone = changed.get("phone", self.phone)
        self.household = changed.get("household", self.household)
        self.kind = kind
