"""`GET /api/incidents`: every incident of a center as a paged query of the per-incident read model.

Consoles get only the most urgent open cases in their view (its urgency queue); the full
list is this query, in the same urgency order, with keyset pagination: each page gives an
opaque `next` cursor for the page after it, so a case is listed once however the list
changes between pages. The read model is kept by the projection runner (embedded) or the
worker (distributed) and read through the `IncidentRows` port.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from command_center.api import json_response, services
from command_center.incident_query import MAX_LIMIT, IncidentQuery
from command_center.problems import Problem
from command_center.watch import own_assignee
from domain import access
from domain.incident import ASSIGNEE_KINDS, SEVERITIES
from projections.cases import STATUSES, TERMINAL, utc_text

PARAMS = ("center", "status", "grid", "severity", "assignee", "overdue", "limit", "cursor")
OPEN = tuple(s for s in STATUSES if s not in TERMINAL)


def encode_cursor(record: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([record["urgency"], record["id"]])).decode()


def decode_cursor(text: str) -> tuple[str, str]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        value = None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise Problem(400, f"cursor {text[:80]!r} is not one this API issued; expected the "
                      "`next` value of a previous page, unchanged", parameter="cursor")
    return value[0], value[1]


def _one(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise Problem(400, f"parameter {name} is given {len(values)} times; expected at most once",
                      parameter=name)
    return values[0] if values else None


def _invalid(name: str, got: str, expected: str) -> Problem:
    return Problem(422, f"parameter {name}={got[:80]!r} is invalid; expected {expected}",
                   parameter=name)


def parse_query(request: Request, now: datetime) -> IncidentQuery:
    """The query a request asks for; a problem naming the first bad parameter."""
    svc = services(request)
    unknown = sorted(set(request.query_params) - set(PARAMS))
    if unknown:
        raise Problem(400, f"unknown parameter {unknown[0]!r}; expected some of "
                      f"{', '.join(PARAMS)}", parameter=unknown[0])
    center = _one(request, "center")
    if not center:
        raise Problem(422, "parameter center is required; expected a city, district or "
                      "township id", parameter="center")
    if center not in svc.jurisdiction or not svc.jurisdiction.is_center(center):
        raise _invalid("center", center, "a city, district or township id")
    fields: dict[str, Any] = {"center": center,
                              "depth": len(svc.jurisdiction.centers_for(center)),
                              "now": utc_text(now.isoformat()) or ""}
    status = _one(request, "status")
    if status is not None:
        wanted = [s.strip() for s in status.split(",")]
        allowed = ("open", *STATUSES)
        bad = [s for s in wanted if s not in allowed]
        if bad:
            raise _invalid("status", status, "open or statuses among " + ", ".join(STATUSES)
                           + " (comma-separated)")
        fields["statuses"] = tuple(dict.fromkeys(
            x for s in wanted for x in (OPEN if s == "open" else (s,))))
    grid = _one(request, "grid")
    if grid is not None:
        unit = svc.jurisdiction.get(grid)
        if unit is None or unit.level != "grid":
            raise _invalid("grid", grid, "the id of a grid of the jurisdiction tree")
        fields["grid"] = grid
    severity = _one(request, "severity")
    if severity is not None:
        if severity not in SEVERITIES:
            raise _invalid("severity", severity, " or ".join(SEVERITIES))
        fields["severity"] = severity
    assignee = _one(request, "assignee")
    if assignee is not None:
        kind, sep, ident = assignee.partition(":")
        if not sep or kind not in ASSIGNEE_KINDS or not ident:
            raise _invalid("assignee", assignee,
                           f"kind:id with kind one of {', '.join(ASSIGNEE_KINDS)}")
        fields["assignee"] = assignee
    overdue = _one(request, "overdue")
    if overdue is not None:
        if overdue not in ("true", "false"):
            raise _invalid("overdue", overdue, "true or false")
        fields["overdue"] = overdue == "true"
    limit = _one(request, "limit")
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            raise _invalid("limit", limit, f"an integer from 1 to {MAX_LIMIT}")
        fields["limit"] = int(limit)
    cursor = _one(request, "cursor")
    if cursor is not None:
        fields["after"] = decode_cursor(cursor)
    return IncidentQuery(**fields)


async def list_incidents(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    query = parse_query(request, datetime.now(UTC))
    # The same permission as the center's view: whoever may watch a center may list its cases.
    # A department or a grid worker, who watch no center, may list the cases dispatched to them:
    # reading each is what the policy lets them do with a case assigned to them.
    kind, _, ident = (query.assignee or "").partition(":")
    if query.assignee is not None and query.assignee == own_assignee(actor):
        svc.authorize(actor, access.READ, svc.jurisdiction.centers_for(query.center),
                      assignee={"kind": kind, "id": ident})
    else:
        svc.authorize(actor, access.VIEW, svc.jurisdiction.centers_for(query.center))
    if svc.incident_rows is None:
        raise Problem(503, "the per-incident read model is not configured on this server")
    rows = svc.incident_rows
    found = await run_in_threadpool(rows.incidents, replace(query, limit=query.limit + 1))
    page = found[:query.limit]
    more = len(found) > query.limit
    return json_response({"items": page, "next": encode_cursor(page[-1]) if more else None})


routes = [Route("/api/incidents", list_incidents, methods=["GET"])]


def add_openapi(doc: dict[str, Any]) -> None:
    """Add `GET /api/incidents` to the /openapi.json document."""

    def param(name: str, schema: dict[str, Any], description: str,
              required: bool = False) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": required, "schema": schema,
                "description": description}

    problem = {"$ref": "#/components/responses/Problem"}
    doc["paths"].setdefault("/api/incidents", {})["get"] = {
        "summary": "A center's incidents, most urgent first, one page at a time",
        "operationId": "listIncidents",
        "parameters": [
            param("center", {"type": "string"}, "a city, district or township id", True),
            param("status", {"type": "string"}, "open, or statuses, comma-separated"),
            param("grid", {"type": "string"}, "a grid id"),
            param("severity", {"type": "string", "enum": ["routine", "major"]}, "severity"),
            param("assignee", {"type": "string"}, "kind:id, e.g. department:water_affairs"),
            param("overdue", {"type": "string", "enum": ["true", "false"]},
                  "being worked with its due time passed (true), or not (false)"),
            param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                  f"page size (default 100, at most {MAX_LIMIT})"),
            param("cursor", {"type": "string"}, "`next` of the previous page"),
        ],
        "responses": {
            "200": {"description": "{items: [incident record], next: cursor or null}",
                    "content": {"application/json": {"schema": {"type": "object"}}}},
            **{str(code): problem for code in (400, 401, 403, 422)},
        },
    }
