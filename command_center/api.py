"""HTTP commands and queries: incidents, the jurisdiction tree and center views."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from command_center.allowed import incident_for
from command_center.bodies import read_json
from command_center.problems import Problem
from command_center.registry_hooks import check_dispatch
from command_center.schemas import ACTION_BODIES, ReportIncident, to_params
from command_center.types import Services
from command_center.watch import watchable_tree
from domain import access
from domain.application import NotFound
from domain.incident import Actor


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  *, canonical: bool = False) -> Response:
    """JSON; `canonical` sorts keys so equal data always gives equal bytes (center views)."""
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_SORT_KEYS if canonical else 0)
    return Response(
        orjson.dumps(data, option=option),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def authorize_read(svc: Services, actor: Actor, what: str, ref: str, centers: Sequence[str],
                   assignee: Mapping[str, object] | None = None,
                   permission: str = access.READ) -> None:
    """Nothing when `actor` may read it; else the very 404 of an id that names nothing, since
    a 403 would confirm that a guessed id (alert ids are uuid5 of feed and event) exists."""
    try:
        svc.authorize(actor, permission, centers, assignee=assignee)
    except Problem as exc:
        if exc.status != 403:
            raise
        raise NotFound(f"{what} {ref!r} not found") from None


async def healthz(request: Request) -> Response:
    svc = services(request)
    return json_response({"status": "ok", "mode": svc.mode, "consoles": svc.hub.count()})


async def report_incident(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    body = await read_json(request, ReportIncident, svc.max_body_bytes)
    unit = svc.jurisdiction.get(body.grid)
    if unit is None or unit.level != "grid":
        raise Problem(422, f"grid {body.grid!r} is not in the jurisdiction tree; "
                      "expected the id of a grid")
    svc.authorize(actor, access.REPORT, svc.jurisdiction.centers_for(body.grid))
    fields: dict[str, Any] = msgspec.to_builtins(body)  # datetimes as ISO text
    if svc.save is not None:  # decided here (it reads nothing), committed by the writer
        incident = svc.incidents.new_report(actor=actor, **fields)
        await svc.save(incident)
    else:
        incident = await run_in_threadpool(lambda: svc.incidents.report(actor=actor, **fields))
    data = incident.as_dict()
    return json_response(data, 201, {"Location": f"/api/incidents/{data['id']}"})


async def get_incident(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    incident_id = request.path_params["incident_id"]

    def load() -> dict[str, Any]:
        incident = svc.incidents.get(incident_id)
        authorize_read(svc, actor, "incident", incident_id, incident.centers, incident.assignee)
        data = incident_for(svc, actor, incident)
        data["timeline"] = svc.incidents.timeline(incident_id)
        return data

    return json_response(await run_in_threadpool(load))


async def incident_action(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    incident_id = request.path_params["incident_id"]
    action = request.path_params["action"]
    body_type = ACTION_BODIES.get(action)
    if body_type is None:
        raise Problem(404, f"unknown action {action!r}; expected one of {', '.join(ACTION_BODIES)}")
    body = await read_json(request, body_type, svc.max_body_bytes, allow_empty=True)
    params = to_params(body)

    def act() -> Any:
        current = svc.incidents.get(incident_id)
        svc.authorize(actor, access.action_permission(action), current.centers,
                      assignee=current.assignee)
        if action == "mark-duplicate":  # the original, too, must be one the officer may see
            of = str(params["of"])
            original = svc.incidents.get(of)
            authorize_read(svc, actor, "incident", of, original.centers, original.assignee)
        if "by_center" in params:  # supervision is ordered in the name of a center
            by_center = str(params["by_center"])
            if by_center not in svc.jurisdiction or not svc.jurisdiction.is_center(by_center):
                raise Problem(422, f"by_center {by_center!r} is not a center of the jurisdiction "
                              "tree; expected a city, district or township id")
            svc.authorize(actor, access.ACT_AS, svc.jurisdiction.centers_for(by_center))
        check_dispatch(svc, action, params, current)  # a registered assignee serving the grid
        # Act on the version the decision was made on: a concurrent change is a 409.
        expected = body.expected_version or current.version
        if svc.save is not None:  # committed from the loop, by the group commit's writer
            return svc.incidents.decide(incident_id, action, actor=actor,
                                        expected_version=expected, loaded=current, **params)
        return svc.incidents.act(incident_id, action, actor=actor, expected_version=expected,
                                 **params)

    incident = await run_in_threadpool(act)
    if svc.save is not None:
        await svc.save(incident)
    return json_response(incident_for(svc, actor, incident))


async def list_centers(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    svc.authorize(actor, access.TREE, ())
    # Only the branch the user works in, each node marked watchable or not (command_center/watch.py).
    return json_response(watchable_tree(svc, actor))


async def center_view(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    center = request.path_params["center_id"]
    if not svc.views.has_center(center):
        raise Problem(404, f"center {center!r} not found; expected a city, district or township id")
    svc.authorize(actor, access.VIEW, svc.jurisdiction.centers_for(center))
    snapshot = svc.views.snapshot(center)
    if inspect.isawaitable(snapshot):
        snapshot = await snapshot
    epoch, seq, view = snapshot
    return json_response(view, headers={"X-Linkage-Epoch": epoch, "X-Linkage-Seq": str(seq)},
                         canonical=True)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/api/incidents", report_incident, methods=["POST"]),
    Route("/api/incidents/{incident_id}", get_incident, methods=["GET"]),
    Route("/api/incidents/{incident_id}/{action}", incident_action, methods=["POST"]),
    Route("/api/centers", list_centers, methods=["GET"]),
    Route("/api/centers/{center_id}/view", center_view, methods=["GET"]),
]
