"""The grid registry's routes in the /openapi.json document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from command_center.registry import MAX_PAGE, RESIDENT_ACTIONS, WORKER_ACTIONS


def add_openapi(doc: dict[str, Any]) -> None:
    """Add the registry's routes to the /openapi.json document."""
    problem = {"$ref": "#/components/responses/Problem"}
    text = {"type": "string", "minLength": 1, "maxLength": 200}
    name = {"type": "object", "additionalProperties": False, "required": ["zh", "en"],
            "properties": {"zh": text, "en": text}}
    json_object: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    csv_body: dict[str, Any] = {"text/csv": {"schema": {"type": "string"}}}

    def query(param: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
        return {"name": param, "in": "query", "required": required, "schema": schema}

    def path(param: str) -> dict[str, Any]:
        return {"name": param, "in": "path", "required": True, "schema": {"type": "string"}}

    def body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False, "required": required,
            "properties": properties}}}}

    def op(summary: str, operation: str, codes: tuple[int, ...], *, params: Sequence[Any] = (),
           request: dict[str, Any] | None = None, ok: str = "200",
           content: dict[str, Any] = json_object) -> dict[str, Any]:
        found: dict[str, Any] = {"summary": summary, "operationId": operation,
                                 "parameters": list(params),
                                 "responses": {ok: {"description": summary, "content": content},
                                               **{str(c): problem for c in codes}}}
        if request is not None:
            found["requestBody"] = request
        return found

    write = (400, 401, 403, 404, 409, 413, 415, 422)
    center = [query("center", {"type": "string"}, True)]
    resident = {"id_number": {"type": "string", "pattern": r"^\d{17}[\dXx]$"}, "name": text,
                "phone": {"type": "string", "pattern": r"^\+?\d[\d-]{4,18}\d$"},
                "household": text, "kind": {"enum": ["permanent", "floating", "rental"]},
                "grid": {"type": "string"}, "arrived": {"type": "string", "format": "date"}}
    paths = doc["paths"]
    paths["/api/registry/parties"] = {"post": op(
        "Register or update a co-governance party", "registerParty", write,
        request=body({"id": text, "kind": {"enum": ["department", "property_company",
                                                   "owners_committee", "volunteer_group"]},
                      "name": name, "serves": {"type": "array", "items": {"type": "string"},
                                               "minItems": 1, "maxItems": 64},
                      "categories": {"type": "array", "items": text, "minItems": 1,
                                     "maxItems": 64}},
                     ["id", "kind", "name", "serves", "categories"]), ok="201")}
    paths["/api/registry/workers"] = {"post": op(
        "Appoint a grid worker", "appointWorker", write, ok="201",
        request=body({"id": text, "name": name,
                      "employment": {"enum": ["full_time", "part_time"]}},
                     ["id", "name", "employment"]))}
    paths["/api/registry/workers/{worker_id}/{action}"] = {"post": op(
        "assign {grid, lead} | unassign {grid} | training {course, date} | release {reason}",
        "workerAction", write, params=[path("worker_id"), {
            "name": "action", "in": "path", "required": True,
            "schema": {"enum": list(WORKER_ACTIONS)}}],
        request={"required": True, "content": json_object})}
    paths["/api/registry/roster"] = {"get": op(
        "Parties, grid workers with workload, unstaffed grids", "getRoster",
        (400, 401, 403, 404), params=center)}
    paths["/api/registry/roster.csv"] = {"get": op(
        "The roster as CSV", "getRosterCsv", (400, 401, 403, 404), params=center,
        content=csv_body)}
    paths["/api/residents"] = {
        "post": op("Register a resident on arrival", "registerResident", write, ok="201",
                   request=body(resident, list(resident))),
        "get": op("Residents of a grid (masked without registry.personal)", "listResidents",
                  (401, 403, 422), params=[
                      query("grid", {"type": "string"}, True),
                      query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
                      query("after", {"type": "string"})])}
    paths["/api/residents/{resident_id}"] = {"get": op(
        "A resident (masked without registry.personal)", "getResident", (401, 404),
        params=[path("resident_id")])}
    paths["/api/residents/{resident_id}/{action}"] = {"post": op(
        "move {grid, household, date} | deregister {reason, date} | correct {fields}",
        "residentAction", write, params=[path("resident_id"), {
            "name": "action", "in": "path", "required": True,
            "schema": {"enum": list(RESIDENT_ACTIONS)}}],
        request={"required": True, "content": json_object})}
    paths["/api/population"] = {"get": op(
        "Population of a unit and its children", "getPopulation", (400, 401, 403, 404),
        params=center)}
    paths["/api/population.csv"] = {"get": op(
        "Population figures as CSV", "getPopulationCsv", (400, 401, 403, 404), params=center,
        content=csv_body)}
