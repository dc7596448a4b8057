"""The auditor's proofs: inclusion of a notification, consistency of two signed tree heads, and an
incident's history with each event's inclusion proof (docs/AUDIT-FORMAT.md).

Proofs carry hashes only, so the role check suffices for the first two; the incident export
carries the events themselves and is authorized on the incident's centers, as its history is.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from command_center.api import json_response, services
from command_center.problems import Problem
from command_center.types import AuditProofs, Services
from domain import access

MAX_ID = 2**62  # notification ids and tree sizes are BIGINTs


def _proofs(svc: Services) -> AuditProofs:
    if svc.proofs is None:
        raise Problem(503, "Merkle proofs are not configured on this server (the composition "
                      "root passes Services.proofs; infra.bootstrap does)")
    return svc.proofs


def _count(request: Request, name: str, required: bool = True) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        if required:
            raise Problem(422, f"query parameter {name!r} is required: a positive integer")
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_ID:
        raise Problem(422, f"{name}={text[:40]!r} is not a positive integer up to {MAX_ID}")
    return int(text)


async def _answer(call: Any, *args: Any) -> Response:
    try:
        return json_response(await run_in_threadpool(call, *args))
    except LookupError as exc:
        raise Problem(404, str(exc).strip("'\"")) from None


async def inclusion_proof(request: Request) -> Response:
    svc = services(request)
    svc.authorize(svc.authenticate(request), access.AUDIT, ())
    notification = _count(request, "notification")
    tree_size = _count(request, "tree_size", required=False)
    return await _answer(_proofs(svc).inclusion, notification, tree_size)


async def consistency_proof(request: Request) -> Response:
    svc = services(request)
    svc.authorize(svc.authenticate(request), access.AUDIT, ())
    first, second = _count(request, "from"), _count(request, "to")
    assert first is not None and second is not None
    if first > second:
        raise Problem(422, f"from={first} is after to={second}: a consistency proof goes from an "
                      "older (smaller) signed tree head to a newer one")
    return await _answer(_proofs(svc).consistency, first, second)


async def incident_export(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    incident_id = request.path_params["incident_id"]
    svc.authorize(actor, access.AUDIT, ())  # by role before the lookup, as the history does
    proofs = _proofs(svc)

    def load() -> dict[str, Any]:
        incident = svc.incidents.get(incident_id)
        svc.authorize(actor, access.AUDIT, incident.centers, assignee=incident.assignee)
        return proofs.incident(str(incident.id))

    return await _answer(load)


routes = [
    Route("/api/audit/proofs/inclusion", inclusion_proof, methods=["GET"]),
    Route("/api/audit/proofs/consistency", consistency_proof, methods=["GET"]),
    Route("/api/audit/incidents/{incident_id}/export", incident_export, methods=["GET"]),
]

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_ERRORS = {str(code): _PROBLEM for code in (401, 403, 404, 422, 503)}


def _query(name: str, required: bool = True) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}


OPENAPI_PATHS: dict[str, Any] = {
    "/api/audit/proofs/inclusion": {"get": {
        "summary": "Inclusion proof of a notification against a signed tree head (auditors)",
        "operationId": "auditInclusionProof",
        "parameters": [_query("notification"), _query("tree_size", required=False)],
        "responses": {"200": {"description": "docs/AUDIT-FORMAT.md, inclusion proof"},
                      **_ERRORS},
    }},
    "/api/audit/proofs/consistency": {"get": {
        "summary": "Consistency proof between two signed tree heads (auditors)",
        "operationId": "auditConsistencyProof",
        "parameters": [_query("from"), _query("to")],
        "responses": {"200": {"description": "docs/AUDIT-FORMAT.md, consistency proof"},
                      **_ERRORS},
    }},
    "/api/audit/incidents/{incident_id}/export": {"get": {
        "summary": "An incident's events, each with its inclusion proof (auditors)",
        "operationId": "auditIncidentExport",
        "parameters": [{"name": "incident_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "docs/AUDIT-FORMAT.md, incident proofs"},
                      **_ERRORS},
    }},
}
