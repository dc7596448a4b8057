"""The grid registry over HTTP: parties, grid workers, residents, population, CSV exports.

Commands go through domain/registry_service.py into the incidents' event store. Reads come
from the registry's projection (projections/registry.py), which `RegistryState` keeps caught up
with the notification log before each read, and from the center views (population counts,
projections/population.py). ID numbers and phones are masked in every answer for actors without
`registry.personal` (domain/registry_access.py); handlers never log them.
"""

from __future__ import annotations

import csv
import inspect
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from command_center.api import json_response, services
from command_center.bodies import read_body
from command_center.decoding import InputError, check_depth
from command_center.problems import Problem
from command_center.registry_state import RegistryState, mask_id_number, mask_phone
from command_center.types import Services
from domain.access import AccessPolicy
from domain.incident import Actor, DomainError
from domain.registry import AlreadyRegistered, Inactive, InvalidField, Unregistered
from domain.registry_access import (
    PERSONAL,
    REGISTRY_MANAGE,
    REGISTRY_READ,
    RESIDENT_WRITE,
    decide,
)
from domain.registry_service import parse_lead
from projections.population import FIELDS, iso_week, population_of

MAX_PAGE = 500


# -- access ----------------------------------------------------------------------------------


def state(svc: Services) -> RegistryState:
    registry = svc.registry
    if not isinstance(registry, RegistryState):
        raise Problem(503, "the registry is not configured on this server")
    return registry


def authorize(svc: Services, actor: Actor, permission: str, centers: Sequence[str]) -> None:
    decision = decide(AccessPolicy(svc.jurisdiction), actor, permission, centers)
    if not decision.allowed:
        raise Problem(403, f"{actor['role']} {actor['user']} may not {permission}: "
                      f"{decision.reason}")


def may(svc: Services, actor: Actor, permission: str, centers: Sequence[str]) -> bool:
    return decide(AccessPolicy(svc.jurisdiction), actor, permission, centers).allowed


def resident_out(svc: Services, actor: Actor, person: dict[str, Any]) -> dict[str, Any]:
    """A resident as this actor may see it: ID number and phone masked without PERSONAL."""
    out = {k: v for k, v in person.items() if k in
           ("id", "id_number", "name", "phone", "household", "kind", "grid", "arrived",
            "registered", "version")}
    grid = person.get("grid")
    centers = svc.jurisdiction.centers_for(grid) \
        if isinstance(grid, str) and grid in svc.jurisdiction else ()
    if not may(svc, actor, PERSONAL, centers):
        out["id_number"] = mask_id_number(str(out.get("id_number", "")))
        out["phone"] = mask_phone(str(out.get("phone", "")))
        out["masked"] = True
    return out


async def body_of(request: Request, svc: Services) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype != "application/json":
        raise Problem(415, f"expected Content-Type: application/json; got {ctype or 'none'}")
    raw = await read_body(request, svc.max_body_bytes)  # the limit of every JSON route
    try:
        check_depth(raw)  # orjson itself decodes 1,000 levels deep
    except InputError as exc:
        raise Problem(exc.status, exc.detail) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Problem(400, "the body is not valid JSON; expected a JSON object") from None
    if not isinstance(data, dict):
        raise Problem(400, "expected a JSON object")
    return data


def run_command(call: Callable[[], Any]) -> Any:
    """Domain errors of the registry as problems: a field's 422 names it, a 409 hints."""
    try:
        return call()
    except InvalidField as exc:
        raise Problem(422, str(exc), field=exc.field) from None
    except AlreadyRegistered as exc:
        extra: dict[str, Any] = {"hint": "move", "registered_in": exc.where,
                                 "resident": exc.resident} if exc.where else {}
        raise Problem(409, str(exc), **extra) from None
    except Unregistered as exc:
        raise Problem(404, str(exc)) from None
    except Inactive as exc:
        raise Problem(409, str(exc)) from None


def _only(data: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise Problem(422, f"unknown field {unknown[0]!r}; expected {', '.join(sorted(allowed))}",
                      field=unknown[0])


# -- parties and grid workers ----------------------------------------------------------------


async def post_party(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    data = await body_of(request, svc)
    _only(data, ("id", "kind", "name", "serves", "categories"))
    reg = state(svc)

    def run() -> Any:
        serves = run_command(lambda: reg.service.check_serves(data.get("serves")))
        for center in serves:
            authorize(svc, actor, REGISTRY_MANAGE, svc.jurisdiction.centers_for(center))
        party, saved = run_command(lambda: reg.service.register_party(
            actor=actor, party_id=data.get("id"), kind=data.get("kind"), name=data.get("name"),
            serves=serves, categories=data.get("categories")))
        return {"id": party.party_id, "kind": party.kind, "name": party.name,
                "serves": party.serves, "categories": party.categories}, saved

    party, saved = await run_in_threadpool(run)
    return json_response(party, 201 if saved else 200)


async def post_worker(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    data = await body_of(request, svc)
    _only(data, ("id", "name", "employment"))
    reg = state(svc)
    home = actor.get("center")
    authorize(svc, actor, REGISTRY_MANAGE,
              svc.jurisdiction.centers_for(home) if home and home in svc.jurisdiction else ())

    def run() -> Any:
        return run_command(lambda: reg.service.appoint_worker(
            actor=actor, worker_id=data.get("id"), name=data.get("name"),
            employment=data.get("employment")))

    worker, saved = await run_in_threadpool(run)
    return json_response(worker_out(worker), 201 if saved else 200)


def worker_out(worker: Any) -> dict[str, Any]:
    return {"id": worker.worker_id, "name": worker.name, "employment": worker.employment,
            "grids": worker.grids, "lead_of": worker.lead_of, "trainings": worker.trainings,
            "released": worker.released}


WORKER_ACTIONS = {"assign": ("grid", "lead"), "unassign": ("grid",),
                  "training": ("course", "date"), "release": ("reason",)}


async def worker_action(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    action = request.path_params["action"]
    if action not in WORKER_ACTIONS:
        raise Problem(404, f"unknown action {action!r}; expected one of "
                      f"{', '.join(WORKER_ACTIONS)}")
    data = await body_of(request, svc)
    _only(data, WORKER_ACTIONS[action])
    worker_id = request.path_params["worker_id"]
    reg = state(svc)
    service = reg.service

    def run() -> Any:
        worker = service.worker(worker_id)
        if worker is None:
            raise Problem(404, f"grid worker {worker_id!r} is not registered")
        if action in ("assign", "unassign"):
            grid = data.get("grid")
            run_command(lambda: service.grid_units(grid))
            authorize(svc, actor, REGISTRY_MANAGE, svc.jurisdiction.centers_for(str(grid)))
        else:  # the worker's own grids (a worker with none: the actor's own center)
            centers = {c for g in worker.grids for c in svc.jurisdiction.centers_for(g)}
            home = actor.get("center")
            if not centers and home in svc.jurisdiction:
                centers = set(svc.jurisdiction.centers_for(str(home)))
            authorize(svc, actor, REGISTRY_MANAGE, sorted(centers))
        if action == "assign":
            lead = run_command(lambda: parse_lead(data.get("lead", False)))
            return run_command(lambda: service.assign_worker(
                actor=actor, worker_id=worker_id, grid=data.get("grid"), lead=lead))[0]
        if action == "unassign":
            return run_command(lambda: service.unassign_worker(
                actor=actor, worker_id=worker_id, grid=data.get("grid")))
        if action == "training":
            return run_command(lambda: service.train_worker(
                actor=actor, worker_id=worker_id, course=data.get("course"),
                on=data.get("date")))[0]
        return run_command(lambda: service.release_worker(
            actor=actor, worker_id=worker_id, reason=data.get("reason")))

    worker = await run_in_threadpool(run)
    return json_response(worker_out(worker))


def roster_for(svc: Services, center: str) -> dict[str, Any]:
    """Parties serving the center (or above or below it), grid workers of its grids with their
    workload, and the grids under it that no worker serves."""
    registry = state(svc).current()
    jurisdiction = svc.jurisdiction
    grids = {g.id for g in jurisdiction.grids_under(center)} \
        if jurisdiction.unit(center).level != "grid" else {center}
    related = set(jurisdiction.centers_for(center))
    parties = [p for p in registry.parties.values() if not p["retired"] and any(
        s in related or jurisdiction.is_within(s, center) for s in p["serves"])]
    now = datetime.now(UTC)
    workers = []
    for worker in registry.workers.values():
        if worker["released"] or not grids.intersection(worker["grids"]):
            continue
        load = registry.workload.get(f"grid_worker:{worker['id']}")
        workers.append({**worker, "workload": load.summary(now) if load else
                        {"open": 0, "overdue": 0, "mean_ack_seconds": None, "acknowledged": 0}})
    staffed = {g for w in workers for g in w["grids"]}
    unstaffed = sorted(grids - staffed)
    return {"center": center, "parties": parties, "grid_workers": workers,
            "unstaffed_grids": unstaffed, "grids": len(grids)}


def query_unit(request: Request, svc: Services) -> str:
    center = request.query_params.get("center")
    if not center:
        raise Problem(400, "missing query parameter center; expected a unit id of the tree")
    if len(center) > 64 or center not in svc.jurisdiction:
        raise Problem(404, f"center {center[:64]!r} is not in the jurisdiction tree")
    return center


async def get_roster(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    center = query_unit(request, svc)
    authorize(svc, actor, REGISTRY_READ, svc.jurisdiction.centers_for(center))
    roster = await run_in_threadpool(lambda: roster_for(svc, center))
    if request.url.path.endswith(".csv"):
        rows = [["kind", "id", "name_zh", "name_en", "grids_or_serves", "lead_of",
                 "employment_or_categories", "open", "overdue", "mean_ack_seconds"]]
        for p in roster["parties"]:
            rows.append([p["kind"], p["id"], p["name"]["zh"], p["name"]["en"],
                         " ".join(p["serves"]), "", " ".join(p["categories"]), "", "", ""])
        for w in roster["grid_workers"]:
            load = w["workload"]
            rows.append(["grid_worker", w["id"], w["name"]["zh"], w["name"]["en"],
                         " ".join(w["grids"]), " ".join(w["lead_of"]), w["employment"],
                         load["open"], load["overdue"], load["mean_ack_seconds"] or ""])
        return csv_response(rows, f"roster-{center}.csv")
    return json_response(roster)


def csv_response(rows: list[list[Any]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        # A cell starting with = + - @ would be a formula in a spreadsheet: quote it as text.
        writer.writerow([f"'{c}" if isinstance(c, str) and c[:1] in "=+-@" else c for c in row])
    return Response(out.getvalue().encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# -- residents ---------------------------------------------------------------------------------

RESIDENT_FIELDS = ("id_number", "name", "phone", "household", "kind", "grid", "arrived")


async def post_resident(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    data = await body_of(request, svc)
    _only(data, RESIDENT_FIELDS)
    reg = state(svc)
    grid = data.get("grid")
    run_command(lambda: reg.service.grid_units(grid))
    authorize(svc, actor, RESIDENT_WRITE, svc.jurisdiction.centers_for(str(grid)))

    def run() -> Any:
        return run_command(lambda: reg.service.register_resident(
            actor=actor, **{k: data.get(k) for k in RESIDENT_FIELDS}))

    resident, saved = await run_in_threadpool(run)
    out = resident_out(svc, actor, resident.as_dict())
    return json_response(out, 201 if saved else 200,
                         {"Location": f"/api/residents/{out['id']}"})


RESIDENT_ACTIONS = {"move": ("grid", "household", "date"), "deregister": ("reason", "date"),
                    "correct": ("name", "phone", "household", "kind")}


async def resident_action(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    action = request.path_params["action"]
    if action not in RESIDENT_ACTIONS:
        raise Problem(404, f"unknown action {action!r}; expected one of "
                      f"{', '.join(RESIDENT_ACTIONS)}")
    data = await body_of(request, svc)
    _only(data, RESIDENT_ACTIONS[action])
    resident_id = request.path_params["resident_id"]
    reg = state(svc)
    service = reg.service

    def run() -> Any:
        resident = run_command(lambda: service.resident(resident_id))
        if action == "move":
            # The grid the person leaves or the one they arrive in: the arrival's township
            # moves someone its registration found registered elsewhere (the 409's hint).
            grid = data.get("grid")
            run_command(lambda: service.grid_units(grid))
            if not may(svc, actor, RESIDENT_WRITE, resident.centers):
                authorize(svc, actor, RESIDENT_WRITE, svc.jurisdiction.centers_for(str(grid)))
            return run_command(lambda: service.move_resident(
                resident_id, actor=actor, grid=grid, household=data.get("household"),
                on=data.get("date")))
        authorize(svc, actor, RESIDENT_WRITE, resident.centers)
        if action == "deregister":
            return run_command(lambda: service.deregister_resident(
                resident_id, actor=actor, reason=data.get("reason"), on=data.get("date")))
        return run_command(lambda: service.correct_resident(resident_id, actor=actor,
                                                            fields=data))[0]

    resident = await run_in_threadpool(run)
    return json_response(resident_out(svc, actor, resident.as_dict()))


async def get_resident(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    resident_id = request.path_params["resident_id"]
    reg = state(svc)
    resident = await run_in_threadpool(lambda: run_command(lambda: reg.service.resident(
        resident_id)))
    try:
        authorize(svc, actor, REGISTRY_READ, resident.centers)
    except Problem:
        raise Problem(404, f"resident {resident_id!r} not found") from None
    return json_response(resident_out(svc, actor, resident.as_dict()))


async def list_residents(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    grid = request.query_params.get("grid", "")
    unit = svc.jurisdiction.get(grid) if len(grid) <= 64 else None
    if unit is None or unit.level != "grid":
        raise Problem(422, f"grid {grid[:64]!r} is not a grid of the jurisdiction tree",
                      field="grid")
    authorize(svc, actor, REGISTRY_READ, svc.jurisdiction.centers_for(grid))
    try:
        limit = int(request.query_params.get("limit", "100"))
    except ValueError:
        raise Problem(422, "limit must be an integer from 1 to 500", field="limit") from None
    if not 1 <= limit <= MAX_PAGE:
        raise Problem(422, f"limit must be from 1 to {MAX_PAGE}; got {limit}", field="limit")
    after = request.query_params.get("after", "")
    registry = await run_in_threadpool(state(svc).current)
    people = sorted((p for p in list(registry.residents.values()) if p["grid"] == grid),
                    key=lambda p: p["id"])
    page = [p for p in people if p["id"] > after][:limit]
    items = [resident_out(svc, actor, {**p, "registered": True}) for p in page]
    next_after = page[-1]["id"] if len(page) == limit else None
    if request.url.path.endswith(".csv"):
        rows = [["id", "id_number", "name", "phone", "household", "kind", "grid", "arrived"]]
        rows += [[i["id"], i["id_number"], i["name"], i["phone"], i["household"], i["kind"],
                  i["grid"], i["arrived"]] for i in items]
        return csv_response(rows, f"residents-{grid}.csv")
    return json_response({"grid": grid, "items": items, "next_after": next_after})


# -- population --------------------------------------------------------------------------------


async def population_figures(svc: Services, unit: str) -> dict[str, Any]:
    """A unit's figures and its children's, from the center view that counts them."""
    jurisdiction = svc.jurisdiction
    level = jurisdiction.unit(unit).level
    center = unit if jurisdiction.is_center(unit) else jurisdiction.centers_for(unit)[0]
    snapshot = svc.views.snapshot(center)
    if inspect.isawaitable(snapshot):
        snapshot = await snapshot
    view = snapshot[2]
    week = iso_week(datetime.now(UTC).isoformat())

    def figures(unit_id: str) -> dict[str, Any]:
        values = population_of(view, unit_id)
        if values["week"] != week:  # no resident event this week yet: none arrived or left
            values.update(arrivals=0, departures=0)
        values["week"] = week
        u = jurisdiction.unit(unit_id)
        return {"id": unit_id, "level": u.level, "name": {"zh": u.name, "en": u.name_en or u.name},
                **values}

    children = [figures(c.id) for c in jurisdiction.children(unit)] if level != "grid" else []
    return {**figures(unit), "children": children}


async def get_population(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    unit = query_unit(request, svc)
    authorize(svc, actor, REGISTRY_READ, svc.jurisdiction.centers_for(unit))
    data = await population_figures(svc, unit)
    if request.url.path.endswith(".csv"):
        rows = [["id", "level", "name_zh", "name_en", "week", *FIELDS]]
        for item in (data, *data["children"]):
            rows.append([item["id"], item["level"], item["name"]["zh"], item["name"]["en"],
                         item["week"], *(item[f] for f in FIELDS)])
        return csv_response(rows, f"population-{unit}.csv")
    return json_response(data)


routes = [
    Route("/api/registry/parties", post_party, methods=["POST"]),
    Route("/api/registry/workers", post_worker, methods=["POST"]),
    Route("/api/registry/workers/{worker_id}/{action}", worker_action, methods=["POST"]),
    Route("/api/registry/roster", get_roster, methods=["GET"]),
    Route("/api/registry/roster.csv", get_roster, methods=["GET"]),
    Route("/api/residents", post_resident, methods=["POST"]),
    Route("/api/residents", list_residents, methods=["GET"]),
    Route("/api/residents.csv", list_residents, methods=["GET"]),
    Route("/api/residents/{resident_id}", get_resident, methods=["GET"]),
    Route("/api/residents/{resident_id}/{action}", resident_action, methods=["POST"]),
    Route("/api/population", get_population, methods=["GET"]),
    Route("/api/population.csv", get_population, methods=["GET"]),
]

__all__ = ["DomainError", "routes"]
