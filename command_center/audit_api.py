"""The auditor's API: an incident's full history, and any center's view as it was at a time.

The past view is rebuilt from notification 1 through the same projection
functions the live runner uses (`new_center`, `apply`, `routes_to`), folding only
the events whose time is at or before `at`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from command_center.api import json_response, services
from command_center.problems import Problem
from domain import access
from domain.application import IncidentService
from projections.center_view import apply, new_center, routes_to
from projections.envelope import Envelope, from_stored
from projections.patch import View

STATIC = Path(__file__).parent / "static"
BATCH = 1000


def envelopes(service: IncidentService) -> Iterator[Envelope]:
    """Every event in the store, in notification order."""
    start = 1
    while True:
        batch = service.recorder.select_notifications(start=start, limit=BATCH)
        for n in batch:
            yield from_stored(n.id, n.originator_id, n.originator_version, n.topic, n.state)
        if len(batch) < BATCH:
            return
        start = batch[-1].id + 1


def parse_time(text: str | None, name: str = "at") -> datetime:
    if not text:
        raise Problem(422, f"query parameter {name!r} is required: an ISO 8601 time with a "
                      "time zone, e.g. 2026-05-01T08:00:00+08:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(422, f"{name}={text!r} is not an ISO 8601 time; expected e.g. "
                      "2026-05-01T08:00:00+08:00") from None
    if when.tzinfo is None:
        raise Problem(422, f"{name}={text!r} has no time zone; add one, e.g. +08:00 or Z")
    return when


def view_at(service: IncidentService, center: str, at: datetime) -> View:
    """The center's view as it was at `at`, folded from notification 1."""
    state = new_center(center)
    for event in envelopes(service):
        if center in routes_to(event) and datetime.fromisoformat(event.at) <= at:
            apply(state, event)
    return state.view


def center_events(service: IncidentService, center: str) -> list[dict[str, Any]]:
    """The events that changed a center's view: notification id, time, type, the aggregate's id
    (`incident`, kept for clients of the first version) and its type (`aggregate`: Incident or
    CameraAlert, so the replay can step by incident events and group the alerts between them)."""
    return [
        {"n": e.notification_id, "at": e.at, "type": e.name, "incident": e.originator_id,
         "aggregate": e.aggregate}
        for e in envelopes(service)
        if center in routes_to(e)
    ]


def _center(request: Request) -> str:
    svc = services(request)
    actor = svc.authenticate(request)
    center = request.path_params["center_id"]
    if not svc.views.has_center(center):
        raise Problem(404, f"center {center!r} not found; expected a city, district or township id")
    svc.authorize(actor, access.AUDIT, svc.jurisdiction.centers_for(center))
    return str(center)


async def incident_history(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    incident_id = request.path_params["incident_id"]
    # Refused by role before the lookup: the answer must not tell whether the id exists.
    svc.authorize(actor, access.AUDIT, ())

    def load() -> dict[str, Any]:
        incident = svc.incidents.get(incident_id)
        svc.authorize(actor, access.AUDIT, incident.centers, assignee=incident.assignee)
        return {"incident": incident.as_dict(), "events": svc.incidents.timeline(incident_id)}

    return json_response(await run_in_threadpool(load))


async def center_view_at(request: Request) -> Response:
    center = _center(request)
    at = parse_time(request.query_params.get("at"))
    svc = services(request)
    if svc.time_travel is not None:  # from the nearest snapshot; equal to the refold below
        view = await run_in_threadpool(svc.time_travel.view_at, center, at)
    else:
        view = await run_in_threadpool(view_at, svc.incidents, center, at)
    return json_response(view, headers={"X-Linkage-At": at.isoformat()})


async def center_event_times(request: Request) -> Response:
    center = _center(request)
    svc = services(request)
    return json_response(await run_in_threadpool(center_events, svc.incidents, center))


async def replay_page(request: Request) -> Response:
    return FileResponse(STATIC / "replay.html", headers={"Cache-Control": "no-cache"})


routes = [
    Route("/replay", replay_page, methods=["GET"]),
    Route("/api/audit/incidents/{incident_id}/history", incident_history, methods=["GET"]),
    Route("/api/audit/centers/{center_id}/view", center_view_at, methods=["GET"]),
    Route("/api/audit/centers/{center_id}/events", center_event_times, methods=["GET"]),
]


def _param(name: str, where: str, schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema}


_PROBLEM = {"$ref": "#/components/responses/Problem"}
_ERRORS = {str(code): _PROBLEM for code in (401, 403, 404, 422)}
_CENTER = _param("center_id", "path", {"type": "string"})

OPENAPI_PATHS: dict[str, Any] = {
    "/api/audit/incidents/{incident_id}/history": {"get": {
        "summary": "Every event of an incident, with actor and time (auditors)",
        "operationId": "auditIncidentHistory",
        "parameters": [_param("incident_id", "path", {"type": "string"})],
        "responses": {"200": {"description": "the incident and its events"}, **_ERRORS},
    }},
    "/api/audit/centers/{center_id}/view": {"get": {
        "summary": "A center's view as it was at a past time, rebuilt from events (auditors)",
        "operationId": "auditCenterViewAt",
        "parameters": [_CENTER, _param("at", "query", {"type": "string", "format": "date-time"})],
        "responses": {"200": {"description": "the view at that time"}, **_ERRORS},
    }},
    "/api/audit/centers/{center_id}/events": {"get": {
        "summary": "Times of the events that changed a center's view (for the replay slider)",
        "operationId": "auditCenterEvents",
        "parameters": [_CENTER],
        "responses": {"200": {"description": "events, oldest first"}, **_ERRORS},
    }},
}


def secure_openapi(doc: dict[str, Any]) -> dict[str, Any]:
    """Declare the credentials every operation needs, and their 401/403 answers."""
    doc["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    doc["security"] = [{"bearer": []}, {"apiKey": []}]
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            if path == "/healthz":
                operation["security"] = []
                continue
            operation["responses"].setdefault("401", _PROBLEM)
            operation["responses"].setdefault("403", _PROBLEM)
    return doc
