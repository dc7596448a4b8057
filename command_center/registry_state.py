"""The registry's projection in a server process, and the checks built on it.

`RegistryState` keeps projections/registry.py caught up with the event store (by topic, in SQL) before
each read: the roster, the workload, the residents registered now. On it: the directory
`GET /api/directory` answers from, the dispatch check (command_center/registry_hooks.py), and the
authenticate hook under which a released grid worker's token gets 401. Also the masks of personal data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from command_center.problems import Problem
from domain.directory import Directory, GridWorker, Name, Party
from domain.incident import Actor
from domain.registry import party_uuid
from domain.registry_service import RegistryService
from projections.envelope import Envelope
from projections.registry import Registry, apply

ReadEvents = Callable[[int, int], list[Envelope]]  # (after position, limit)
MAX_PAGE = 500


def mask_id_number(number: str) -> str:
    return number[:4] + "*" * (len(number) - 6) + number[-2:] if len(number) > 6 else "*" * 6


def mask_phone(phone: str) -> str:
    digits = len(phone)
    return phone[:3] + "*" * max(digits - 5, 3) + phone[-2:] if digits > 6 else "*" * 6


class RegistryState:
    """The registry's projection in this process, caught up from the store on each read."""

    def __init__(self, read: ReadEvents, service: RegistryService, batch: int = 5000) -> None:
        self.read = read
        self.service = service
        self.batch = batch
        self.registry = Registry()
        self._lock = threading.Lock()
        self._directory: tuple[int, Directory] | None = None
        self._names: tuple[int, dict[str, list[str]]] | None = None

    def current(self) -> Registry:
        """The projection with every stored event applied (blocking: call from a thread)."""
        with self._lock:
            while True:
                events = self.read(self.registry.position, self.batch)
                for event in events:
                    apply(self.registry, event)
                if len(events) < self.batch:
                    return self.registry

    def names(self, grid: str) -> list[str]:
        """The names of the residents registered in a grid (for redaction)."""
        registry = self.current()
        with self._lock:
            if self._names is None or self._names[0] != registry.position:
                by_grid: dict[str, list[str]] = {}
                for person in list(registry.residents.values()):
                    by_grid.setdefault(person["grid"], []).append(person["name"])
                self._names = (registry.position, by_grid)
            return self._names[1].get(grid, [])

    def released(self, worker_id: str) -> bool:
        worker = self.current().workers.get(worker_id)
        return worker is not None and bool(worker["released"])

    def directory(self, roles: dict[str, Name]) -> Directory:
        """The registry as a Directory (GET /api/directory answers from it)."""
        registry = self.current()
        with self._lock:
            if self._directory is not None and self._directory[0] == registry.position:
                return self._directory[1]
            parties = [Party(p["id"], p["kind"], Name(**p["name"]), tuple(p["serves"]),
                             tuple(p["categories"]))
                       for p in registry.parties.values() if not p["retired"]]
            # One entry per grid a worker serves: the dispatch form offers the workers of the
            # case's grid by `grid` (static/names.js).
            workers = [GridWorker(w["id"], Name(**w["name"]), grid)
                       for w in registry.workers.values() if not w["released"]
                       for grid in w["grids"]]
            directory = Directory(parties, workers, roles)
            self._directory = (registry.position, directory)
            return directory

    def check_assignee(self, assignee: object, grid: str, centers: Sequence[str],
                       jurisdiction: Any) -> None:
        """422 naming the assignee and the grid when a case may not go to this assignee."""
        if not isinstance(assignee, dict):
            return
        kind, target = assignee.get("kind"), assignee.get("id")
        registry = self.current()
        if kind == "grid_worker":
            worker = registry.workers.get(str(target))
            if worker is None or worker["released"]:
                raise Problem(422, f"assignee grid worker {target!r} is not on the roster "
                              f"(the case is in grid {grid})", field="assignee")
            if grid not in worker["grids"]:
                serves = ", ".join(worker["grids"]) or "no grid"
                raise Problem(422, f"grid worker {target!r} does not serve grid {grid} (serves "
                              f"{serves}); dispatch to a worker of grid {grid}", field="assignee")
            return
        party = registry.parties.get(str(registered_key(str(kind), str(target))))
        if party is None or party["retired"]:
            raise Problem(422, f"assignee {kind} {target!r} is not a registered co-governance "
                          f"party (the case is in grid {grid})", field="assignee")
        chain = set(centers)
        if not any(s in chain for s in party["serves"]):
            raise Problem(422, f"{kind} {target!r} serves {', '.join(party['serves'])}, not "
                          f"grid {grid} (centers {', '.join(centers)})", field="assignee")


def registered_key(assignee_kind: str, party_id: str) -> str:
    """The projection's key of a party named as an assignee (its aggregate id)."""
    kind = "department" if assignee_kind == "department" else "property_company"
    return str(party_uuid(kind, party_id))


def refuse_released(authenticate: Callable[[Any], Actor],
                    registry: RegistryState) -> Callable[[Any], Actor]:
    """An authenticate hook under which a released grid worker's token gets 401."""

    def check(conn: Any) -> Actor:
        actor = authenticate(conn)
        if actor.get("role") == "grid_worker" and registry.released(str(actor.get("user"))):
            raise Problem(401, f"grid worker {actor['user']} was released from the roster; "
                          "their token no longer works",
                          headers={"WWW-Authenticate": 'Bearer realm="linkage"'})
        return actor

    return check
