"""The directory: who a case can be dispatched to, and the names a console shows for them.

Pure code: no I/O. ``parse_directory`` takes the already-decoded file (TOML or JSON, see
infra/loaders/directory.py), checks it against the jurisdiction tree and returns an immutable
:class:`Directory`. A party is a department or a co-governance party (a property-management
company, an owners' committee, a volunteer group); it serves the centers it lists and everything
beneath them. Grid workers belong to one grid. Every name is given in Chinese and English.

An incident's assignee names a party as ``{"kind": party.assignee_kind, "id": party.id}``
(``department`` for a department, ``party`` for the others) and a grid worker as
``{"kind": "grid_worker", "id": worker.id}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.jurisdiction import Jurisdiction

PARTY_KINDS: tuple[str, ...] = ("department", "property_company", "owners_committee",
                                "volunteer_group")
# Bounds on one entry: a name or an id longer than this is a mistake in the file, not a name.
MAX_ID = 64
MAX_NAME = 120
MAX_CATEGORIES = 64


class DirectoryError(ValueError):
    """A directory file that cannot be used; ``entry`` names the offending entry."""

    def __init__(self, message: str, entry: str | None = None) -> None:
        super().__init__(message)
        self.entry = entry


@dataclass(frozen=True, slots=True)
class Name:
    zh: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    kind: str
    name: Name
    serves: tuple[str, ...]  # center ids
    categories: tuple[str, ...]

    @property
    def assignee_kind(self) -> str:
        """The `kind` of an incident's assignee naming this party."""
        return "department" if self.kind == "department" else "party"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "assignee_kind": self.assignee_kind,
                "name": self.name.as_dict(), "serves": list(self.serves),
                "categories": list(self.categories)}


@dataclass(frozen=True, slots=True)
class GridWorker:
    id: str
    name: Name
    grid: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name.as_dict(), "grid": self.grid}


class Directory:
    """The validated directory. Build it with :func:`parse_directory`."""

    def __init__(self, parties: Iterable[Party], grid_workers: Iterable[GridWorker],
                 roles: Mapping[str, Name]) -> None:
        self.parties: tuple[Party, ...] = tuple(parties)
        self.grid_workers: tuple[GridWorker, ...] = tuple(grid_workers)
        self.roles: dict[str, Name] = dict(roles)
        self._parties = {(p.assignee_kind, p.id): p for p in self.parties}
        self._workers = {w.id: w for w in self.grid_workers}

    def party(self, kind: str, party_id: str) -> Party | None:
        """The party an assignee `{"kind", "id"}` names, or None."""
        return self._parties.get((kind, party_id))

    def grid_worker(self, worker_id: str) -> GridWorker | None:
        return self._workers.get(worker_id)

    def visible(self, jurisdiction: Jurisdiction,
                watches: Callable[[str], bool]) -> dict[str, Any]:
        """The parties serving any center `watches` accepts or one beneath/above it on its chain,
        and the grid workers of the grids under a watched center: what a user's console needs to
        name and pick assignees for the cases it can see."""
        watched = [u.id for u in jurisdiction.centers() if watches(u.id)]
        # A party serving a watched center, a center above it (city departments) or one beneath it.
        related: set[str] = set()
        for center in watched:
            related.update(jurisdiction.centers_for(center))
        parties = [p for p in self.parties
                   if any(s in related or any(jurisdiction.is_within(s, c) for c in watched)
                          for s in p.serves)]
        grids = {g.id for c in watched for g in jurisdiction.grids_under(c)}
        workers = [w for w in self.grid_workers if w.grid in grids]
        return {"parties": [p.as_dict() for p in parties],
                "grid_workers": [w.as_dict() for w in workers]}


def _fail(entry: str, problem: str) -> DirectoryError:
    return DirectoryError(f"{entry}: {problem}", entry)


def _text(entry: str, field: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(entry, f"{field} must be a non-empty string; got {value!r}")
    if len(value) > limit:
        raise _fail(entry, f"{field} is {len(value)} characters; at most {limit}")
    return value


def _name(entry: str, value: object, field: str = "name") -> Name:
    if not isinstance(value, dict) or set(value) != {"zh", "en"}:
        raise _fail(entry, f'{field} must be {{"zh": ..., "en": ...}}; got {value!r}')
    return Name(_text(entry, f"{field}.zh", value["zh"], MAX_NAME),
                _text(entry, f"{field}.en", value["en"], MAX_NAME))


def _keys(entry: str, raw: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _fail(entry, f"unknown field {unknown[0]!r}; expected {', '.join(sorted(allowed))}")
    missing = sorted(allowed - set(raw))
    if missing:
        raise _fail(entry, f"missing field {missing[0]!r}")


def _party(index: int, raw: object, jurisdiction: Jurisdiction) -> Party:
    label = f"party #{index + 1}"
    if not isinstance(raw, dict):
        raise _fail(label, f"expected a table; got {raw!r}")
    if isinstance(raw.get("id"), str) and raw["id"]:
        label = f"party {raw['id']!r}"
    _keys(label, raw, {"id", "kind", "name", "serves", "categories"})
    party_id = _text(label, "id", raw["id"], MAX_ID)
    kind = raw["kind"]
    if kind not in PARTY_KINDS:
        raise _fail(label, f"kind must be one of {', '.join(PARTY_KINDS)}; got {kind!r}")
    serves = raw["serves"]
    if not isinstance(serves, list) or not serves:
        raise _fail(label, "serves must be a non-empty list of center ids")
    for center in serves:
        if not isinstance(center, str) or center not in jurisdiction \
                or not jurisdiction.is_center(center):
            raise _fail(label, f"serves {center!r}, which is not a city, district or township "
                        "of the jurisdiction tree")
    categories = raw["categories"]
    if not isinstance(categories, list) or not categories or len(categories) > MAX_CATEGORIES:
        raise _fail(label, f"categories must be a list of 1 to {MAX_CATEGORIES} category names")
    return Party(party_id, kind, _name(label, raw["name"]), tuple(serves),
                 tuple(_text(label, "categories[]", c, MAX_ID) for c in categories))


def _worker(index: int, raw: object, jurisdiction: Jurisdiction) -> GridWorker:
    label = f"grid worker #{index + 1}"
    if not isinstance(raw, dict):
        raise _fail(label, f"expected a table; got {raw!r}")
    if isinstance(raw.get("id"), str) and raw["id"]:
        label = f"grid worker {raw['id']!r}"
    _keys(label, raw, {"id", "name", "grid"})
    grid = raw["grid"]
    unit = jurisdiction.get(grid) if isinstance(grid, str) else None
    if unit is None or unit.level != "grid":
        raise _fail(label, f"grid {grid!r} is not a grid of the jurisdiction tree")
    return GridWorker(_text(label, "id", raw["id"], MAX_ID), _name(label, raw["name"]), grid)


def _known(raw: object, key: str, jurisdiction: Jurisdiction) -> bool:
    """Whether every unit an entry names (`serves` or `grid`) is in the tree."""
    if not isinstance(raw, dict):
        return True  # malformed: let the strict check name the problem
    value = raw.get(key)
    units = value if isinstance(value, list) else [value]
    return all(isinstance(u, str) and u in jurisdiction for u in units)


def parse_directory(data: object, jurisdiction: Jurisdiction,
                    roles: Iterable[str] = (), strict: bool = True) -> Directory:
    """Validate a decoded directory file; DirectoryError names the first bad entry.

    `roles`: the role ids that must each have a name (domain.access.ROLES). Not strict (the
    bundled sample against another jurisdiction tree): entries naming units the tree does not
    have are left out instead of refused."""
    if not isinstance(data, dict):
        raise DirectoryError("expected a table with parties, grid_workers and roles")
    unknown = sorted(set(data) - {"parties", "grid_workers", "roles"})
    if unknown:
        raise DirectoryError(f"unknown section {unknown[0]!r}; expected parties, grid_workers, "
                             "roles", unknown[0])
    raw_parties = data.get("parties", [])
    raw_workers = data.get("grid_workers", [])
    if not isinstance(raw_parties, list) or not isinstance(raw_workers, list):
        raise DirectoryError("parties and grid_workers must be lists of tables")
    parties = [_party(i, raw, jurisdiction) for i, raw in enumerate(raw_parties)
               if strict or _known(raw, "serves", jurisdiction)]
    workers = [_worker(i, raw, jurisdiction) for i, raw in enumerate(raw_workers)
               if strict or _known(raw, "grid", jurisdiction)]
    seen: set[tuple[str, str]] = set()
    for party in parties:
        key = (party.assignee_kind, party.id)
        if key in seen:
            raise _fail(f"party {party.id!r}", f"listed twice as a {party.assignee_kind}")
        seen.add(key)
    worker_ids: set[str] = set()
    for worker in workers:
        if worker.id in worker_ids:
            raise _fail(f"grid worker {worker.id!r}", "listed twice")
        worker_ids.add(worker.id)
    raw_roles = data.get("roles", {})
    if not isinstance(raw_roles, dict):
        raise DirectoryError("roles must be a table of role id -> {zh, en}", "roles")
    names = {role: _name(f"role {role!r}", value) for role, value in raw_roles.items()}
    for role in roles:
        if role not in names:
            raise _fail(f"role {role!r}", "has no name; expected roles.<id> = {zh, en}")
    return Directory(parties, workers, names)
