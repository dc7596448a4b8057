"""Supervision orders (督办单) over HTTP: issue, acknowledge, fulfil, and the open orders of a
center or department (the addressee's and the issuer's console panel, static/orders.js)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from command_center.api import json_response, services
from command_center.bodies import read_json
from command_center.incident_list import _one
from command_center.problems import Problem
from command_center.schemas import Base, Ident, OptionalNote, Text
from command_center.types import Services
from domain import access
from domain.incident import Actor
from domain.supervision_order import DEPARTMENT_PREFIX, SupervisionOrder
from projections.cases import utc_text

MAX_ORDERS = 200
Unit = Annotated[str, Meta(min_length=1, max_length=140, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class IssueOrder(Base, kw_only=True):
    issuer: Ident
    addressee: Unit
    deadline: Annotated[datetime, Meta(tz=True, description="act by, ISO 8601 with time zone")]
    note: Text
    incident: Ident | None = None


class AcknowledgeOrder(Base, kw_only=True):
    pass


class FulfilOrder(Base, kw_only=True):
    what: Text
    note: OptionalNote = ""


def _orders(svc: Services) -> Any:
    if svc.orders is None or svc.ledger is None:
        raise Problem(503, "supervision orders are not configured on this server")
    return svc.orders


def authorize_unit(svc: Services, actor: Actor, unit: str) -> None:
    """May `actor` see the orders and assessment of `unit`: a center's officers and those
    above it, auditors; a department's own handlers, and the city's officers and auditors."""
    if unit.startswith(DEPARTMENT_PREFIX):
        if actor.get("role") == "department" and actor.get("department") == unit[len(DEPARTMENT_PREFIX):]:
            return
        svc.authorize(actor, access.VIEW, (svc.jurisdiction.root.id,))
        return
    if unit not in svc.jurisdiction or not svc.jurisdiction.is_center(unit):
        raise Problem(422, f"unit {unit!r} is not a center of the jurisdiction tree nor "
                      "'department:<id>'; expected a city, district or township id",
                      parameter="unit")
    svc.authorize(actor, access.VIEW, svc.jurisdiction.centers_for(unit))


def _answerer(svc: Services, actor: Actor, order: SupervisionOrder) -> None:
    """Only the addressee answers an order: a department's handler, or the addressed
    center's own officer (an admin may act for either)."""
    if actor.get("role") == "admin":
        return
    if order.addressee.startswith(DEPARTMENT_PREFIX):
        if (actor.get("role") == "department"
                and actor.get("department") == order.addressee[len(DEPARTMENT_PREFIX):]):
            return
        raise Problem(403, f"order {order.id} is addressed to {order.addressee}; only its "
                      "handlers answer it")
    if actor.get("center") != order.addressee:
        raise Problem(403, f"order {order.id} is addressed to center {order.addressee}; only "
                      "that center's officers answer it")
    svc.authorize(actor, access.ACT_AS, svc.jurisdiction.centers_for(order.addressee))


async def issue_order(request: Request) -> Response:
    svc = services(request)
    orders = _orders(svc)
    actor = svc.authenticate(request)
    body = await read_json(request, IssueOrder, svc.max_body_bytes)
    if body.issuer not in svc.jurisdiction or not svc.jurisdiction.is_center(body.issuer):
        raise Problem(422, f"issuer {body.issuer!r} is not a center of the jurisdiction tree; "
                      "expected a city, district or township id", parameter="issuer")
    svc.authorize(actor, access.ACT_AS, svc.jurisdiction.centers_for(body.issuer))

    def issue() -> SupervisionOrder:
        if body.incident is not None:  # the case it is about must be one the issuer sees
            incident = svc.incidents.get(body.incident)
            if body.issuer not in incident.centers:
                raise Problem(422, f"incident {body.incident} is not in the jurisdiction of "
                              f"{body.issuer}", parameter="incident")
        order: SupervisionOrder = orders.issue(
            actor=actor, issuer=body.issuer, addressee=body.addressee,
            deadline=body.deadline.isoformat(), note=body.note, incident=body.incident)
        return order

    order = await run_in_threadpool(issue)
    return json_response(order.as_dict(), status=201)


async def get_order(request: Request) -> Response:
    svc = services(request)
    orders = _orders(svc)
    actor = svc.authenticate(request)
    order = await run_in_threadpool(orders.get, request.path_params["order_id"])
    svc.authorize(actor, access.VIEW, order.centers)
    return json_response(order.as_dict())


async def order_action(request: Request) -> Response:
    svc = services(request)
    orders = _orders(svc)
    actor = svc.authenticate(request)
    action = request.path_params["action"]
    if action not in ("acknowledge", "fulfil"):
        raise Problem(404, f"unknown order action {action!r}; expected acknowledge or fulfil")
    body: AcknowledgeOrder | FulfilOrder = (
        await read_json(request, FulfilOrder, svc.max_body_bytes) if action == "fulfil"
        else await read_json(request, AcknowledgeOrder, svc.max_body_bytes, allow_empty=True))
    order_id = request.path_params["order_id"]

    def act() -> SupervisionOrder:
        _answerer(svc, actor, orders.get(order_id))
        if isinstance(body, FulfilOrder):
            done: SupervisionOrder = orders.fulfil(order_id, actor=actor, what=body.what)
            return done
        acknowledged: SupervisionOrder = orders.acknowledge(order_id, actor=actor)
        return acknowledged

    return json_response((await run_in_threadpool(act)).as_dict())


async def list_orders(request: Request) -> Response:
    svc = services(request)
    _orders(svc)
    actor = svc.authenticate(request)
    unknown = sorted(set(request.query_params) - {"unit"})
    if unknown:
        raise Problem(400, f"unknown parameter(s) {', '.join(unknown)}; expected unit",
                      parameter=unknown[0])
    unit = _one(request, "unit")
    if not unit:
        raise Problem(400, "parameter unit is required: a center id or 'department:<id>'",
                      parameter="unit")
    authorize_unit(svc, actor, unit)
    ledger = svc.ledger
    assert ledger is not None

    def read() -> list[dict[str, Any]]:
        ledger.catch_up()
        with ledger.lock:
            return ledger.orders.for_unit(unit, MAX_ORDERS)

    items = await run_in_threadpool(read)
    now = utc_text(datetime.now().astimezone().isoformat()) or ""
    for item in items:
        item["role"] = ("issuer" if item["issuer"] == unit
                        else "addressee" if item["addressee"] == unit else "escalated")
        item["past_deadline"] = (utc_text(item["deadline"]) or "") < now
    return json_response({"unit": unit, "items": items})


routes = [
    Route("/api/orders", issue_order, methods=["POST"]),
    Route("/api/orders", list_orders, methods=["GET"]),
    Route("/api/orders/{order_id}", get_order, methods=["GET"]),
    Route("/api/orders/{order_id}/{action}", order_action, methods=["POST"]),
]


def add_openapi(doc: dict[str, Any]) -> None:
    """Add the supervision-order paths to the /openapi.json document."""
    (issue_ref, fulfil_ref), components = msgspec.json.schema_components(
        [IssueOrder, FulfilOrder], ref_template="#/components/schemas/{name}")
    doc.setdefault("components", {}).setdefault("schemas", {}).update(components)
    problem = {"$ref": "#/components/responses/Problem"}
    ok = {"description": "the order", "content": {"application/json": {"schema": {"type": "object"}}}}
    order_id = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}

    def body(ref: dict[str, Any]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": ref}}}

    paths = doc.setdefault("paths", {})
    paths["/api/orders"] = {
        "post": {"summary": "Issue a supervision order (督办单)", "operationId": "issueOrder",
                 "requestBody": body(issue_ref),
                 "responses": {"201": ok, **{str(c): problem for c in (400, 401, 403, 404, 413,
                                                                       415, 422)}}},
        "get": {"summary": "The open orders a center or department issued, received or had "
                           "escalated to it", "operationId": "listOrders",
                "parameters": [{"name": "unit", "in": "query", "required": True,
                                "schema": {"type": "string"},
                                "description": "a center id or department:<id>"}],
                "responses": {"200": {"description": "{unit, items: [order]}",
                                      "content": {"application/json": {"schema": {"type": "object"}}}},
                              **{str(c): problem for c in (400, 401, 403, 422)}}},
    }
    paths["/api/orders/{order_id}"] = {
        "get": {"summary": "One supervision order", "operationId": "getOrder",
                "parameters": [order_id],
                "responses": {"200": ok, **{str(c): problem for c in (401, 403, 404)}}},
    }
    paths["/api/orders/{order_id}/fulfil"] = {
        "post": {"summary": "Report what was done (the addressee)", "operationId": "fulfilOrder",
                 "parameters": [order_id], "requestBody": body(fulfil_ref),
                 "responses": {"200": ok, **{str(c): problem for c in (400, 401, 403, 404, 409,
                                                                       413, 415, 422)}}},
    }
    paths["/api/orders/{order_id}/acknowledge"] = {
        "post": {"summary": "Acknowledge an order (the addressee)", "operationId": "acknowledgeOrder",
                 "parameters": [order_id],
                 "responses": {"200": ok, **{str(c): problem for c in (400, 401, 403, 404, 409,
                                                                       413, 415, 422)}}},
    }
