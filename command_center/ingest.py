"""HTTP ingest of camera/sensor alerts (JSON batches, CAP 1.2) and duty-officer alert actions."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route

from command_center.api import authorize_read, json_response, services
from command_center.bodies import check_json_media_type, read_body, read_json
from command_center.dead_letters import stats_for
from command_center.decoding import off_loop
from command_center.feed_formats import CAP_MEDIA_TYPES, FeedError, decode_alerts, decode_cap
from command_center.intake import retry_after
from command_center.problems import Problem
from command_center.types import Services
from domain import access
from domain.alert_service import (
    ALERT_ACTIONS,
    AlertService,
    IngestUnavailable,
    Outcome,
    StormWindow,
    UnknownArea,
    UnknownCamera,
)
from domain.camera_alert import Observation
from domain.incident import Actor

ALERT_PERMISSION = "alerts:ingest"


def alert_service(svc: Services) -> AlertService:
    if svc.alerts is None:
        raise Problem(503, "alert ingest is not configured on this server")
    return svc.alerts


def authenticate_feed(svc: Services, conn: HTTPConnection) -> Actor:
    actor = svc.authenticate_feed(conn)
    svc.authorize(actor, ALERT_PERMISSION, ())
    return actor


def check_rate(svc: Services, actor: Actor, cost: int, path: str) -> None:
    wait = svc.intake.limiter.take(actor["user"], cost)
    if wait > 0:
        svc.intake.stats.add(f"{path}.rate_limited")
        raise Problem(429, f"feed {actor['user']!r} is over its rate limit of "
                           f"{svc.intake.limiter.rate:g} alerts/s; retry after {wait:.1f}s",
                      headers={"Retry-After": retry_after(wait)})


def store(svc: Services, actor: Actor, observations: Sequence[Observation], path: str) -> list[Outcome]:
    """Store a batch (blocking; run it in a thread). Unknown cameras and areas raise their domain
    error (422, as every InvalidCommand); a store that could not take the batch, Problem 503."""
    alerts = alert_service(svc)

    def may_report(centers: Sequence[str]) -> None:
        svc.authorize(actor, ALERT_PERMISSION, centers)  # a feed limited to a township stays there

    try:
        outcomes = alerts.ingest(actor["user"], observations, actor, authorize=may_report)
    except (UnknownCamera, UnknownArea):
        svc.intake.stats.add(f"{path}.rejected")
        raise
    except IngestUnavailable as exc:  # e.g. the writer process restarted: nothing was acknowledged
        svc.intake.stats.add(f"{path}.unavailable")
        raise Problem(503, str(exc), headers={"Retry-After": retry_after(exc.retry_after)}) from None
    stats = svc.intake.stats
    stats.add(f"{path}.accepted", len(outcomes))
    for outcome in outcomes:
        stats.add(f"alerts.{outcome.status}")
    return outcomes


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    counts: dict[str, int] = {"created": 0, "updated": 0, "ended": 0, "duplicate": 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
    return {"accepted": len(outcomes), **counts, "results": [o.as_dict() for o in outcomes]}


async def ingest_alerts(request: Request) -> Response:
    svc = services(request)
    actor = authenticate_feed(svc, request)
    body = await read_body(request, svc.intake.max_body_bytes)
    if not body.strip():
        raise Problem(400, 'empty body; expected an alert object or {"alerts": [...]}')
    check_json_media_type(request)
    try:
        observations = await off_loop(lambda data: decode_alerts(data, svc.intake.max_batch), body)
    except FeedError as exc:
        svc.intake.stats.add(f"http.{exc.status}")
        raise Problem(exc.status, exc.detail) from None
    check_rate(svc, actor, len(observations), "http")
    outcomes = await run_in_threadpool(store, svc, actor, observations, "http")
    return json_response(summary(outcomes))


async def ingest_cap(request: Request) -> Response:
    svc = services(request)
    actor = authenticate_feed(svc, request)
    ctype = request.headers.get("content-type", "")
    if ctype.split(";", 1)[0].strip().lower() not in CAP_MEDIA_TYPES:
        raise Problem(415, f"expected Content-Type: application/cap+xml; got {ctype or 'none'!r}")
    body = await read_body(request, svc.max_body_bytes)
    if not body.strip():
        raise Problem(400, "empty body; expected a CAP 1.2 <alert> document")
    try:
        # Always in a thread: the XML is parsed in chunks and its areas are located in Python.
        observation = await run_in_threadpool(decode_cap, body, svc.jurisdiction.locate)
    except FeedError as exc:
        svc.intake.stats.add(f"cap.{exc.status}")
        raise Problem(exc.status, exc.detail) from None
    check_rate(svc, actor, 1, "cap")
    outcomes = await run_in_threadpool(store, svc, actor, [observation], "cap")
    return json_response(summary(outcomes))


async def ingest_stats(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    svc.authorize(actor, access.INGEST_STATS, ())
    return json_response(stats_for(svc, actor))


# -- duty officers' actions on alerts ------------------------------------------------------------

Short = Annotated[str, Meta(max_length=500)]


class AlertAction(Struct, forbid_unknown_fields=True, kw_only=True):
    note: Short = ""
    reason: Short = ""
    incident: Annotated[str, Meta(max_length=64)] | None = None
    category: Annotated[str, Meta(max_length=128, pattern=r"^[A-Za-z0-9_.:\-]*$")] | None = None
    severity: Literal["routine", "major"] | None = None
    description: Annotated[str, Meta(max_length=4000)] | None = None


REQUIRED = {"dismiss": "reason", "link": "incident"}


async def get_alert(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    alerts = alert_service(svc)

    def load() -> dict[str, Any]:
        alert_ref = request.path_params["alert_id"]
        data = alerts.get(alert_ref).as_dict()
        authorize_read(svc, actor, "alert", alert_ref, data["centers"],
                       permission=access.ALERT_READ)
        data["timeline"] = alerts.timeline(data["id"])
        return data

    return json_response(await run_in_threadpool(load))


async def alert_action(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    alerts = alert_service(svc)
    alert_ref = request.path_params["alert_id"]
    action = request.path_params["action"]
    if action not in ALERT_ACTIONS:
        raise Problem(404, f"unknown alert action {action!r}; expected one of "
                           f"{', '.join(ALERT_ACTIONS)}")
    body = await read_json(request, AlertAction, svc.max_body_bytes, allow_empty=True)
    field_name = REQUIRED.get(action)
    if field_name and not getattr(body, field_name):
        raise Problem(422, f"{action} needs '{field_name}' in the body")
    params = {k: v for k, v in msgspec.structs.asdict(body).items() if v not in (None, "")}

    def run() -> dict[str, Any]:
        svc.authorize(actor, f"alerts:{action}", alerts.get(alert_ref).centers)
        if action == "link":  # the incident, too, must be one the officer may see
            ref = str(params["incident"])
            incident = svc.incidents.get(ref)
            authorize_read(svc, actor, "incident", ref, incident.centers, incident.assignee)
        return alerts.act(alert_ref, action, actor=actor, **params)

    data = await run_in_threadpool(run)
    return json_response(data)


StormKey = Annotated[str, Meta(min_length=1, max_length=300)]
MAX_STORM_KEYS = 16  # the other windows of one burst acknowledged with `key`


class StormAck(Struct, forbid_unknown_fields=True, kw_only=True):
    center: Annotated[str, Meta(min_length=1, max_length=64)]
    key: StormKey
    # Other windows of the same burst, acknowledged in the same transaction: every one of them
    # is marked acknowledged in the view, even when `key`'s alerts already covered its alerts.
    also: Annotated[list[StormKey], Meta(max_length=MAX_STORM_KEYS)] = []
    note: Short = ""


async def acknowledge_storm(request: Request) -> Response:
    """Acknowledge every unacknowledged alert of a storm shown on a center's console."""
    svc = services(request)
    actor = svc.authenticate(request)
    alerts = alert_service(svc)
    body = await read_json(request, StormAck, svc.max_body_bytes)
    if not svc.views.has_center(body.center):
        raise Problem(404, f"center {body.center!r} not found; expected a city, district or township id")
    # A center's view belongs to that center and the centers above it.
    svc.authorize(actor, "alerts:acknowledge", list(svc.jurisdiction.centers_for(body.center)))
    snapshot = svc.views.snapshot(body.center)
    if inspect.isawaitable(snapshot):
        snapshot = await snapshot
    storms = snapshot[2].get("storms") or {}
    windows = []
    for key in dict.fromkeys([body.key, *body.also]):
        storm = storms.get(key)
        if storm is None:
            raise Problem(404, f"no storm {key!r} on the console of {body.center}; "
                               "expected a key from the view's storms")
        windows.append(StormWindow(storm["kind"], storm["id"], int(storm["window"]),
                                   int(storm["start_ts"]), int(storm.get("window_first_n", 1))))
    first = windows[0]

    def run() -> int:
        return alerts.acknowledge_storm(
            kind=first.kind, ident=first.ident, size=first.size, start=first.start,
            from_notification=first.from_notification, also=windows[1:],
            actor=actor, note=body.note,
            authorize=lambda centers: svc.authorize(actor, "alerts:acknowledge", centers))

    count = await run_in_threadpool(run)
    return json_response({"storm": body.key, "acknowledged": count})


routes = [
    Route("/api/storms/acknowledge", acknowledge_storm, methods=["POST"]),
    Route("/api/ingest/alerts", ingest_alerts, methods=["POST"]),
    Route("/api/ingest/cap", ingest_cap, methods=["POST"]),
    Route("/api/ingest/stats", ingest_stats, methods=["GET"]),
    Route("/api/alerts/{alert_id}", get_alert, methods=["GET"]),
    Route("/api/alerts/{alert_id}/{action}", alert_action, methods=["POST"]),
]


def add_openapi(doc: dict[str, Any]) -> None:
    """Add the ingest and alert paths (and their schemas) to the /openapi.json document."""
    from command_center.feed_formats import AlertBatch, AlertIn

    types: list[Any] = [AlertIn, AlertBatch, AlertAction, StormAck]
    refs, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    doc["components"]["schemas"].update(components)
    alert_in, batch, action_body, storm_ack = refs
    problem = {"$ref": "#/components/responses/Problem"}

    def errors(*codes: int) -> dict[str, Any]:
        return {str(code): problem for code in codes}

    def ok(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}

    alert_param = {"name": "alert_id", "in": "path", "required": True, "schema": {"type": "string"}}
    doc["paths"]["/api/ingest/alerts"] = {"post": {
        "summary": "Ingest one alert or a batch of up to 1,000 (idempotent on each alert's id)",
        "operationId": "ingestAlerts",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"oneOf": [alert_in, batch]}}}},
        "responses": {"200": ok("committed: per-alert outcomes"),
                      **errors(400, 401, 403, 413, 415, 422, 429)},
    }}
    doc["paths"]["/api/ingest/cap"] = {"post": {
        "summary": "Ingest one OASIS CAP 1.2 <alert> (DTDs and entities refused)",
        "operationId": "ingestCap",
        "requestBody": {"required": True, "content": {"application/cap+xml": {"schema": {"type": "string"}}}},
        "responses": {"200": ok("committed"), **errors(400, 401, 403, 413, 415, 422, 429)},
    }}
    doc["paths"]["/api/storms/acknowledge"] = {"post": {
        "summary": "Acknowledge every unacknowledged alert of a storm on a center's console",
        "operationId": "acknowledgeStorm",
        "requestBody": {"required": True, "content": {"application/json": {"schema": storm_ack}}},
        "responses": {"200": ok("how many were acknowledged"), **errors(400, 403, 404, 415, 422)},
    }}
    doc["paths"]["/api/ingest/stats"] = {"get": {
        "summary": "Ingest counters per path and outcome, and the recent MQTT dead letters of "
                   "the reader's jurisdiction (duty officers and admins)",
        "operationId": "ingestStats", "responses": {"200": ok("counters")}}}
    doc["paths"]["/api/alerts/{alert_id}"] = {"get": {
        "summary": "An alert with its timeline (rule firings included)", "operationId": "getAlert",
        "parameters": [alert_param], "responses": {"200": ok("the alert"), **errors(404)}}}
    for action in ALERT_ACTIONS:
        op_id = "".join(part.capitalize() for part in action.split("-"))
        doc["paths"][f"/api/alerts/{{alert_id}}/{action}"] = {"post": {
            "summary": f"{action} an alert", "operationId": f"alert{op_id}",
            "parameters": [alert_param],
            "requestBody": {"required": False, "content": {"application/json": {"schema": action_body}}},
            "responses": {"200": ok("the alert after the action"),
                          **errors(400, 404, 409, 413, 415, 422)},
        }}
