"""Open311 GeoReport v2 at /open311/v2/: discovery, services, service definitions, service
requests (POST to report, GET with the spec's filters) and tokens, in JSON and XML.

A client authenticates with an API key (`api_key` in the form or query, or `X-API-Key`): a feed
key limited to a city, district or township center (`linkage feed-key issue --center ID`). It
reports within that center only and reads only that center's requests. Every error is in
Open311's error format, in the format the path asked for, with a description of what was wrong.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from command_center.api import services
from command_center.bodies import read_body
from command_center.incident_query import IncidentQuery
from command_center.open311.formats import FORMATS, Open311Error, error_response, render
from command_center.open311.mapping import CLOSED, service_request
from command_center.open311.report import NewRequest, new_request
from command_center.open311_catalog import LISTS, Open311
from command_center.problems import Problem
from command_center.request_context import noted
from command_center.types import Services
from domain import access
from domain.application import NotFound
from domain.incident import Actor, DomainError, InvalidCommand
from projections.cases import STATUSES

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-30T00:00:00Z"  # when these endpoints last changed
FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024
MAX_IDS = 100
GET_PARAMS = frozenset({"api_key", "jurisdiction_id", "service_request_id", "service_code",
                        "status", "start_date", "end_date"})
OPEN_STATUSES = tuple(s for s in STATUSES if s not in CLOSED)
Handler = Callable[[Request, str], Awaitable[Response]]


def open311(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Runs a handler with the path's format; every refusal becomes an Open311 error."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        fmt = request.path_params.get("format", "json")
        try:
            if fmt not in FORMATS:
                raise Open311Error(404, f"format {fmt[:16]!r} is not served; expected .json or "
                                   ".xml")
            return await handler(request, fmt)
        except Open311Error as exc:
            return error_response(fmt, exc.status, exc.description, exc.headers)
        except Problem as exc:
            return error_response(fmt, exc.status, exc.detail, exc.headers)
        except NotFound as exc:
            return error_response(fmt, 404, str(exc))
        except InvalidCommand as exc:
            return error_response(fmt, 422, str(exc))
        except DomainError as exc:
            return error_response(fmt, 409, str(exc))

    return endpoint


def settings_of(svc: Services) -> Open311:
    if svc.open311 is None:
        raise Open311Error(503, "Open311 is not configured on this server")
    return svc.open311


def client(request: Request, svc: Services, config: Open311, key: str | None) -> Actor:
    """The feed actor of the request's API key, limited to a center; 403 otherwise."""
    key = key or request.headers.get("x-api-key")
    if not key:
        raise Open311Error(403, "api_key was not provided; send the API key you were issued "
                           "as api_key (or the X-API-Key header)")
    actor = config.verify_key(key)
    if actor is None:
        if svc.throttle is not None:  # guessing keys costs like guessing tokens
            svc.throttle.failed(request.client.host if request.client else "")
        raise Open311Error(403, "api_key is not valid (unknown or revoked)")
    center = actor.get("center")
    if center is None or not svc.jurisdiction.is_center(center):
        raise Open311Error(403, "this API key is not limited to a city, district or township "
                           "center; Open311 clients need one (linkage feed-key issue --center)")
    return noted(actor)


def _one_param(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise Open311Error(400, f"parameter {name} is given {len(values)} times; expected once "
                           "(a list is comma-separated)")
    return values[0] if values else None


# -- discovery and services -----------------------------------------------------------------------


@open311
async def discovery(request: Request, fmt: str) -> Response:
    base = str(request.base_url).rstrip("/") + "/open311/v2"
    return render(fmt, "discovery", {
        "changeset": CHANGESET,
        "contact": "the operators of this command center",
        "key_service": "ask the operators for an API key (linkage feed-key issue --center ID)",
        "endpoints": [{"specification": SPECIFICATION, "url": base, "changeset": CHANGESET,
                       "type": "production", "formats": ["application/json", "text/xml"]}],
    })


@open311
async def list_services(request: Request, fmt: str) -> Response:
    config = settings_of(services(request))
    return render(fmt, "services", [
        {"service_code": s.service_code, "service_name": s.service_name,
         "description": s.description, "metadata": bool(s.attributes), "type": "realtime",
         "keywords": ", ".join(s.keywords), "group": s.group}
        for s in config.catalog.services.values()])


@open311
async def service_definition(request: Request, fmt: str) -> Response:
    config = settings_of(services(request))
    code = request.path_params["service_code"]
    service = config.catalog.services.get(code)
    if service is None:
        raise Open311Error(404, f"service_code {code[:64]!r} is not a service here; see "
                           "services.json")
    return render(fmt, "service_definition", {
        "service_code": service.service_code,
        "attributes": [
            {"variable": True, "code": a.code, "datatype": a.datatype, "required": a.required,
             "datatype_description": a.datatype_description or None, "order": a.order,
             "description": a.description,
             **({"values": [{"key": v.key, "name": v.name} for v in a.values]}
                if a.datatype in LISTS else {})}
            for a in sorted(service.attributes, key=lambda a: a.order)],
    })


# -- service requests -----------------------------------------------------------------------------


def _locate(svc: Services, new: NewRequest) -> str:
    """The grid a request is in: by its coordinates, else by the grid its address names."""
    if new.lon is not None and new.lat is not None:
        grid = svc.jurisdiction.locate(new.lon, new.lat)
        if grid is None:
            raise Open311Error(422, f"the location lat={new.lat:g}, long={new.lon:g} is outside "
                               "the jurisdiction served here")
        return grid
    address = (new.address or "").casefold()
    named = [g for g in svc.jurisdiction.grids()
             if any(n and n.casefold() in address for n in (g.id, g.name, g.name_en))]
    if not named:
        raise Open311Error(422, "address_string names no grid of the jurisdiction served here; "
                           "send lat and long, or a grid's name")
    return max(named, key=lambda g: len(g.name)).id  # the most specific name that matches


@open311
async def post_request(request: Request, fmt: str) -> Response:
    svc = services(request)
    config = settings_of(svc)
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM:
        raise Open311Error(415, f"a request is posted as {FORM}; got "
                           f"{media[:60] or 'no Content-Type'!r}")
    body = await read_body(request, min(svc.max_body_bytes, MAX_FORM_BYTES))
    new = new_request(body, config.catalog, svc.jurisdiction.root.id)
    actor = client(request, svc, config, new.api_key)
    grid = _locate(svc, new)
    centers = svc.jurisdiction.centers_for(grid)
    svc.authorize(actor, access.REPORT, centers)
    location = {"lon": new.lon, "lat": new.lat} if new.lon is not None else None

    def report() -> str:
        incident = svc.incidents.report(
            actor=actor, source="open311", category=new.service.service_code,
            severity=new.service.severity, grid=grid, description=new.description,
            location=location, reporter=new.reporter)
        return str(incident.id)

    incident_id = await run_in_threadpool(report)
    return render(fmt, "service_requests", [
        {"service_request_id": incident_id, "service_notice": None,
         "account_id": new.account_id}], 201)


def _time(name: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Open311Error(400, f"{name} must be a w3 date and time with its offset, e.g. "
                           f"2026-11-05T08:15:30+08:00 or ...Z; got {text[:40]!r}")
    return moment.astimezone(UTC)


def _list(request: Request, name: str) -> tuple[str, ...]:
    text = _one_param(request, name)
    if text is None:
        return ()
    items = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not items:
        raise Open311Error(400, f"parameter {name} is empty; expected a comma-separated list")
    if len(items) > MAX_IDS:
        raise Open311Error(400, f"parameter {name} lists {len(items)} values; at most {MAX_IDS}")
    return items


def request_query(request: Request, svc: Services, config: Open311, center: str,
                  now: datetime) -> IncidentQuery:
    """The read-model query the GET parameters ask for, checked whole."""
    unknown = sorted(set(request.query_params) - GET_PARAMS)
    if unknown:
        raise Open311Error(400, f"parameter {unknown[0][:40]!r} is not a GeoReport v2 filter; "
                           f"expected {', '.join(sorted(GET_PARAMS))}")
    ids = _list(request, "service_request_id")
    codes = _list(request, "service_code")
    for code in codes:
        if code not in config.catalog.services:
            raise Open311Error(400, f"service_code {code[:64]!r} is not a service here; see "
                               "services.json")
    statuses: tuple[str, ...] = ()
    for status in _list(request, "status"):
        if status not in ("open", "closed"):
            raise Open311Error(400, f"status {status[:20]!r} is not an Open311 status; expected "
                               "open, closed or both")
        statuses += tuple(CLOSED) if status == "closed" else OPEN_STATUSES
    start_text, end_text = _one_param(request, "start_date"), _one_param(request, "end_date")
    start = _time("start_date", start_text) if start_text else None
    end = _time("end_date", end_text) if end_text else None
    span = timedelta(days=config.max_days)
    if start and end and end < start:
        raise Open311Error(400, f"end_date {end_text} is before start_date {start_text}")
    if start and end and end - start > span:
        raise Open311Error(400, f"start_date to end_date spans more than {config.max_days} "
                           "days; ask for a shorter range")
    if not ids:  # the spec's default window: the last 90 days
        if start is None:
            start = (end or now) - span
        if end is None:
            end = start + span
    return IncidentQuery(
        center=center, depth=len(svc.jurisdiction.centers_for(center)),
        statuses=tuple(sorted(set(statuses))), categories=codes, ids=ids,
        reported_from=start.isoformat() if start else None,
        reported_to=end.isoformat() if end else None, limit=config.max_results)


def _requests_of(svc: Services, config: Open311, records: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    return [service_request(svc.incidents.get(r["id"]).as_dict(), config.catalog)
            for r in records]


@open311
async def get_requests(request: Request, fmt: str) -> Response:
    svc = services(request)
    config = settings_of(svc)
    actor = client(request, svc, config, _one_param(request, "api_key"))
    query = request_query(request, svc, config, str(actor["center"]), datetime.now(UTC))
    rows = svc.incident_rows
    if rows is None:
        raise Open311Error(503, "the incident list is not configured on this server")
    found = await run_in_threadpool(
        lambda: _requests_of(svc, config, rows.incidents(query)))
    return render(fmt, "service_requests", found)


async def _one_request(request: Request, svc: Services, config: Open311) -> dict[str, Any]:
    actor = client(request, svc, config, _one_param(request, "api_key"))
    request_id = request.path_params["request_id"]

    def load() -> dict[str, Any]:
        incident = svc.incidents.get(request_id)
        if str(actor["center"]) not in incident.centers:  # as unknown: ids are not confirmed
            raise NotFound(f"service request {request_id!r} not found")
        return incident.as_dict()

    return await run_in_threadpool(load)


@open311
async def get_request(request: Request, fmt: str) -> Response:
    svc = services(request)
    config = settings_of(svc)
    incident = await _one_request(request, svc, config)
    return render(fmt, "service_requests", [service_request(incident, config.catalog)])


@open311
async def get_token(request: Request, fmt: str) -> Response:
    """Requests are made at once, so a token is the request's own id (the spec allows both)."""
    svc = services(request)
    config = settings_of(svc)
    token = request.path_params["request_id"]
    incident = await _one_request(request, svc, config)
    return render(fmt, "service_requests",
                  [{"service_request_id": incident["id"], "token": token}])
