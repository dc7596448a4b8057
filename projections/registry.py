"""The registry's read model: roster, workload and residents, a pure fold over events.

`Registry` folds Party, Worker and Resident events (domain/registry.py) and the incident
events that dispatch work (Dispatched, Transferred, Returned, Acknowledged, Resolved, Closed,
Rejected) into:

- the roster: every party and grid worker, each worker's grids and the one lead per grid
  (assigning a new lead to a grid makes the previous lead an ordinary member of it);
- the workload per assignee: its open tasks with their due times, and the sum and count of
  dispatch-to-acknowledge times (the mean time to acknowledge);
- the residents registered now, by id (what the registry must hold; nothing else grows).

No clock, no I/O: "overdue" is decided by the caller's `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from projections.envelope import Envelope

ENDS_TASK = ("Returned", "Resolved", "Closed", "Rejected", "MarkedDuplicate")


def assignee_key(assignee: object) -> str | None:
    """'grid_worker:gw-1' for an assignee {"kind", "id"}."""
    if isinstance(assignee, dict) and assignee.get("kind") and assignee.get("id"):
        return f"{assignee['kind']}:{assignee['id']}"
    return None


def _seconds(at: str) -> float | None:
    try:
        return datetime.fromisoformat(at).timestamp()
    except (TypeError, ValueError):
        return None


@dataclass
class Workload:
    open: dict[str, str] = field(default_factory=dict)  # incident id -> due (ISO)
    dispatched_at: dict[str, float] = field(default_factory=dict)  # unacknowledged, by incident
    ack_seconds: float = 0.0
    acks: int = 0

    def summary(self, now: datetime) -> dict[str, Any]:
        overdue = 0
        for due in self.open.values():
            try:
                if due and datetime.fromisoformat(due) < now:
                    overdue += 1
            except ValueError:
                continue
        mean = round(self.ack_seconds / self.acks, 1) if self.acks else None
        return {"open": len(self.open), "overdue": overdue, "mean_ack_seconds": mean,
                "acknowledged": self.acks}


@dataclass
class Registry:
    """The folded registry; `position` is the last notification applied."""

    position: int = 0
    parties: dict[str, dict[str, Any]] = field(default_factory=dict)  # "kind:id" -> party
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)  # worker id -> worker
    leads: dict[str, str] = field(default_factory=dict)  # grid -> lead worker id
    workload: dict[str, Workload] = field(default_factory=dict)  # assignee key -> workload
    residents: dict[str, dict[str, Any]] = field(default_factory=dict)  # aggregate id -> person
    _assignee: dict[str, str] = field(default_factory=dict)  # open incident -> assignee key
    _worker_ids: dict[str, str] = field(default_factory=dict)  # aggregate id -> worker id

    def staffed(self, grid: str) -> bool:
        return any(grid in w["grids"] for w in self.workers.values() if not w["released"])

    def worker_serves(self, worker_id: str, grid: str) -> bool:
        worker = self.workers.get(worker_id)
        return worker is not None and not worker["released"] and grid in worker["grids"]


def _party(registry: Registry, event: Envelope) -> None:
    data = event.data
    if event.name == "Registered":
        kind = data["kind"]
        assignee_kind = "department" if kind == "department" else "party"
        registry.parties[event.originator_id] = {
            "id": data["party_id"], "kind": kind, "assignee_kind": assignee_kind,
            "name": data["name"], "serves": list(data["serves"]),
            "categories": list(data["categories"]), "retired": False}
        return
    party = registry.parties.get(event.originator_id)
    if party is None:
        return
    if event.name == "Changed":
        party.update(name=data["name"], serves=list(data["serves"]),
                     categories=list(data["categories"]), retired=False)
    elif event.name == "Retired":
        party["retired"] = True


def _worker(registry: Registry, event: Envelope) -> None:
    data = event.data
    if event.name == "Appointed":
        registry.workers[data["worker_id"]] = {
            "id": data["worker_id"], "name": data["name"], "employment": data["employment"],
            "grids": [], "lead_of": [], "trainings": 0, "last_training": None,
            "released": False}
        registry._worker_ids[event.originator_id] = data["worker_id"]
        return
    worker = registry.workers.get(registry._worker_ids.get(event.originator_id, ""))
    if worker is None:
        return
    if event.name == "Assigned":
        grid = data["grid"]
        if grid not in worker["grids"]:
            worker["grids"].append(grid)
        if data["lead"]:
            previous = registry.leads.get(grid)
            if previous and previous != worker["id"] and previous in registry.workers:
                lead_of = registry.workers[previous]["lead_of"]
                if grid in lead_of:
                    lead_of.remove(grid)
            registry.leads[grid] = worker["id"]
            if grid not in worker["lead_of"]:
                worker["lead_of"].append(grid)
        elif grid in worker["lead_of"]:
            worker["lead_of"].remove(grid)
            registry.leads.pop(grid, None)
    elif event.name == "Unassigned":
        grid = data["grid"]
        if grid in worker["grids"]:
            worker["grids"].remove(grid)
        if grid in worker["lead_of"]:
            worker["lead_of"].remove(grid)
            registry.leads.pop(grid, None)
    elif event.name == "TrainingCompleted":
        worker["trainings"] += 1
        worker["last_training"] = {"course": data["course"], "date": data["date"]}
    elif event.name == "Released":
        for grid in worker["lead_of"]:
            registry.leads.pop(grid, None)
        worker.update(released=True, grids=[], lead_of=[])


def _resident(registry: Registry, event: Envelope) -> None:
    data = event.data
    rid = event.originator_id
    if event.name == "Registered":
        registry.residents[rid] = {
            "id": rid, "id_number": data["id_number"], "name": data["name"],
            "phone": data["phone"], "household": data["household"], "kind": data["kind"],
            "grid": data["grid"], "arrived": data["arrived"]}
    elif event.name == "Reregistered":
        previous = registry.residents.get(rid, {})
        registry.residents[rid] = {
            "id": rid, "id_number": previous.get("id_number", data.get("id_number", "")),
            "name": data["name"], "phone": data["phone"], "household": data["household"],
            "kind": data["kind"], "grid": data["grid"], "arrived": data["arrived"]}
    elif event.name == "Deregistered":
        registry.residents.pop(rid, None)
    elif rid in registry.residents:
        person = registry.residents[rid]
        if event.name == "Moved":
            person.update(grid=data["grid"], household=data["household"])
        elif event.name == "Corrected":
            person.update(data["changed"])


def _incident(registry: Registry, event: Envelope) -> None:
    incident = event.originator_id
    name = event.name
    if name in ("Dispatched", "Transferred"):
        key = assignee_key(event.data.get("assignee"))
        _end_task(registry, incident)
        if key is None:
            return
        load = registry.workload.setdefault(key, Workload())
        load.open[incident] = str(event.data.get("due") or "")
        at = _seconds(event.at)
        if at is not None:
            load.dispatched_at[incident] = at
        registry._assignee[incident] = key
    elif name == "Acknowledged":
        key = registry._assignee.get(incident)
        acked = registry.workload.get(key) if key else None
        if acked is not None:
            started = acked.dispatched_at.pop(incident, None)
            at = _seconds(event.at)
            if started is not None and at is not None:
                acked.ack_seconds += max(0.0, at - started)
                acked.acks += 1
    elif name in ENDS_TASK:
        _end_task(registry, incident)


def _end_task(registry: Registry, incident: str) -> None:
    key = registry._assignee.pop(incident, None)
    load = registry.workload.get(key) if key else None
    if load is not None:
        load.open.pop(incident, None)
        load.dispatched_at.pop(incident, None)


_FOLDS = {"Party": _party, "Worker": _worker, "Resident": _resident, "Incident": _incident}


def apply(registry: Registry, event: Envelope) -> Registry:
    """Fold one event (in place); an event at or before `position` changes nothing."""
    if event.notification_id <= registry.position:
        return registry
    fold = _FOLDS.get(event.aggregate)
    if fold is not None:
        fold(registry, event)
    registry.position = event.notification_id
    return registry
