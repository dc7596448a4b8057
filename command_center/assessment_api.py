"""`GET /api/assessment`: the assessment (考核) of townships, districts and departments by day,
week or month, as JSON or CSV (`Accept: text/csv` or `?format=csv`), from the step-4 ledger.

Officers see their own center and the centers below it (and, at the city, the departments);
auditors and admins see every unit; a department's handler sees its department.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from command_center.api import json_response, services
from command_center.incident_list import _one
from command_center.orders_api import authorize_unit
from command_center.problems import Problem
from command_center.types import Services
from domain.incident import Actor
from projections.assessment import COLUMNS, DEPARTMENT, PERIODS, next_start, period_start, rows

PARAMS = ("unit", "period", "from", "to", "format")
# At most this many periods per unit in one answer, and this many rows in all.
MAX_PERIODS = {"day": 366, "week": 260, "month": 120}
MAX_ROWS = 20_000
DEFAULT_SPAN = {"day": 30, "week": 7 * 12, "month": 365}


def _date(request: Request, name: str, default: date) -> date:
    text = _one(request, name)
    if text is None:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Problem(422, f"parameter {name}={text[:40]!r} is invalid; expected a date "
                      "YYYY-MM-DD", parameter=name) from None


def visible_units(svc: Services, actor: Actor, known: list[str]) -> list[tuple[str, str]]:
    """Every (unit, kind) the actor may see: townships and districts of the tree, departments
    that have figures."""
    if actor.get("role") == "department":
        return [(f"{DEPARTMENT}{actor.get('department')}", "department")]
    out: list[tuple[str, str]] = []
    tree = svc.jurisdiction
    candidates = [(c.id, c.level) for c in tree.centers() if c.level in ("district", "township")]
    candidates += [(u, "department") for u in known if u.startswith(DEPARTMENT)]
    for unit, kind in candidates:
        try:
            authorize_unit(svc, actor, unit)
        except Problem as refused:
            if refused.status != 403:
                raise
            continue
        out.append((unit, kind))
    return out


def _csv(items: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in items:
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
    return out.getvalue()


async def assessment(request: Request) -> Response:
    svc = services(request)
    if svc.ledger is None:
        raise Problem(503, "the assessment is not configured on this server")
    actor = svc.authenticate(request)
    unknown = sorted(set(request.query_params) - set(PARAMS))
    if unknown:
        raise Problem(400, f"unknown parameter(s) {', '.join(unknown)}; expected "
                      f"{', '.join(PARAMS)}", parameter=unknown[0])
    period = _one(request, "period") or "week"
    if period not in PERIODS:
        raise Problem(422, f"parameter period={period[:40]!r} is invalid; expected one of "
                      f"{', '.join(PERIODS)}", parameter="period")
    fmt = _one(request, "format") or ("csv" if "text/csv" in request.headers.get("accept", "")
                                      else "json")
    if fmt not in ("json", "csv"):
        raise Problem(422, f"parameter format={fmt[:40]!r} is invalid; expected json or csv",
                      parameter="format")
    today = datetime.now(svc.ledger.assessment.offset).date()
    last = _date(request, "to", today)
    first = _date(request, "from", last - timedelta(days=DEFAULT_SPAN[period]))
    if first > last:
        raise Problem(422, f"from {first} is after to {last}; expected from <= to",
                      parameter="from")
    periods, start = 0, period_start(first, period)
    while start <= last and periods <= MAX_PERIODS[period]:
        periods, start = periods + 1, next_start(start, period)
    if periods > MAX_PERIODS[period]:
        raise Problem(422, f"from {first} to {last} spans more than {MAX_PERIODS[period]} "
                      f"{period}s; ask for a shorter range", parameter="from")
    unit = _one(request, "unit")
    ledger = svc.ledger

    def compute() -> list[dict[str, Any]]:
        ledger.catch_up()
        with ledger.lock:
            if unit is not None:
                authorize_unit(svc, actor, unit)
                kind = ("department" if unit.startswith(DEPARTMENT)
                        else svc.jurisdiction.unit(unit).level)
                units = [(unit, kind)]
            else:
                units = visible_units(svc, actor, ledger.assessment.units())
                if not units:
                    raise Problem(403, "no township, district or department is within this "
                                  "identity's reach")
            if len(units) * periods > MAX_ROWS:
                raise Problem(422, f"{len(units)} units x {periods} {period}s is more than "
                              f"{MAX_ROWS} rows; name a unit or ask for a shorter range",
                              parameter="from")
            return rows(ledger.assessment, units, period, first, last, svc.weights)

    items = await run_in_threadpool(compute)
    if fmt == "csv":
        return Response(_csv(items), media_type="text/csv; charset=utf-8")
    return json_response({"period": period, "from": first.isoformat(), "to": last.isoformat(),
                          "columns": list(COLUMNS), "rows": items})


def add_openapi(doc: dict[str, Any]) -> None:
    """Add `GET /api/assessment` to the /openapi.json document."""

    def param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema,
                "description": description}

    problem = {"$ref": "#/components/responses/Problem"}
    doc.setdefault("paths", {})["/api/assessment"] = {"get": {
        "summary": "The assessment (考核) of townships, districts and departments",
        "operationId": "assessment",
        "parameters": [
            param("unit", {"type": "string"}, "a township or district id, or department:<id>; "
                  "default: every unit the caller may see"),
            param("period", {"type": "string", "enum": list(PERIODS)}, "default week"),
            param("from", {"type": "string", "format": "date"}, "first day (YYYY-MM-DD)"),
            param("to", {"type": "string", "format": "date"}, "last day (default today)"),
            param("format", {"type": "string", "enum": ["json", "csv"]},
                  "csv: the same rows as text/csv (or send Accept: text/csv)"),
        ],
        "responses": {
            "200": {"description": "{period, from, to, columns, rows}, or the rows as CSV",
                    "content": {"application/json": {"schema": {"type": "object"}},
                                "text/csv": {"schema": {"type": "string"}}}},
            **{str(code): problem for code in (400, 401, 403, 422)},
        },
    }}
