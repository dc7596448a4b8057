"""The Starlette application: routes, error handling, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from command_center.api import json_response
from command_center.api import routes as api_routes
from command_center.assessment_api import add_openapi as add_assessment_openapi
from command_center.assessment_api import assessment
from command_center.audit_api import OPENAPI_PATHS as AUDIT_PATHS
from command_center.audit_api import routes as audit_routes
from command_center.audit_api import secure_openapi
from command_center.audit_proofs import OPENAPI_PATHS as PROOF_PATHS
from command_center.audit_proofs import routes as proof_routes
from command_center.center_map import CenterMaps
from command_center.center_map import add_openapi as add_map_openapi
from command_center.center_map import routes as map_routes
from command_center.console import console_endpoint
from command_center.directory import add_openapi as add_directory_openapi
from command_center.directory import routes as directory_routes
from command_center.disclosure import add_openapi as add_disclosure_openapi
from command_center.disclosure import routes as disclosure_routes
from command_center.feed_ws import feed_endpoint
from command_center.health import routes as health_routes
from command_center.incident_list import add_openapi as add_incident_list_openapi
from command_center.incident_list import routes as incident_list_routes
from command_center.ingest import add_openapi as add_ingest_openapi
from command_center.ingest import routes as ingest_routes
from command_center.metrics import HttpMetrics
from command_center.metrics import routes as metrics_routes
from command_center.open311 import routes as open311_routes
from command_center.openapi import build_openapi
from command_center.orders_api import add_openapi as add_orders_openapi
from command_center.orders_api import routes as order_routes
from command_center.problems import Problem, problem_response
from command_center.registry import routes as registry_routes
from command_center.registry_openapi import add_openapi as add_registry_openapi
from command_center.request_context import RequestIds, stamped
from command_center.throttle import QuietRefusals, ThrottleMiddleware
from command_center.types import Services
from domain.application import NotFound, UnknownGrid, VersionConflict
from domain.incident import DomainError, IllegalTransition, InvalidCommand, public_name
from domain.supervision_order import OrderRefused

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def openapi(request: Request) -> Response:
    return json_response(request.app.state.openapi)


def _domain_status(exc: DomainError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (IllegalTransition, VersionConflict, OrderRefused)):
        return 409
    if isinstance(exc, (UnknownGrid, InvalidCommand)):
        return 422
    return 409


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, instance=request.url.path,
                            headers=exc.headers, **exc.extra)


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    extra: dict[str, Any] = {}
    if isinstance(exc, IllegalTransition):
        extra = {"current_status": exc.status.value,
                 "allowed_actions": [public_name(a) for a in exc.allowed]}
    return problem_response(_domain_status(exc), str(exc), instance=request.url.path, **extra)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if exc.status_code == 404:
        detail = f"no route for {request.method} {request.url.path}; see /openapi.json"
    elif exc.status_code == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}; see /openapi.json"
    return problem_response(exc.status_code, detail, instance=request.url.path,
                            headers=dict(exc.headers or {}))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem_response(500, "internal error; it has been logged", instance=request.url.path)


def create_app(services: Services) -> Starlette:
    # Every actor a request authenticates carries the request id into the events it records.
    services.authenticate = stamped(services.authenticate)
    services.authenticate_feed = stamped(services.authenticate_feed)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.ensure_future(start()) for start in services.background]
        access_log = logging.getLogger("uvicorn.access")
        quiet = QuietRefusals(services.throttle) if services.throttle is not None else None
        if quiet is not None:
            access_log.addFilter(quiet)
        try:
            yield
        finally:
            if quiet is not None:
                access_log.removeFilter(quiet)
            for stop in services.on_shutdown:
                result = stop()
                if asyncio.iscoroutine(result):
                    await result
            # Cancelled together, awaited together: tasks that stop child processes (the sealer,
            # the snapshots) wait for them side by side, not one after another.
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *api_routes,
            *map_routes,
            *incident_list_routes,
            *directory_routes,
            *registry_routes,
            *disclosure_routes,
            *ingest_routes,
            *audit_routes,
            *proof_routes,
            *metrics_routes,
            *health_routes,
            *open311_routes,
            *order_routes,
            Route("/api/assessment", assessment, methods=["GET"]),
            WebSocketRoute("/ws/console", console_endpoint),
            WebSocketRoute("/ws/feed", feed_endpoint),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={
            Problem: on_problem,
            DomainError: on_domain_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
        lifespan=lifespan,
        # Request ids and metrics outermost; then, before routing, an address out of
        # authentication failures costs no token decoding.
        middleware=[Middleware(RequestIds),
                    *([Middleware(HttpMetrics, metrics=services.metrics)]
                      if services.http_metrics else []),
                    *([Middleware(ThrottleMiddleware, throttle=services.throttle)]
                      if services.throttle is not None else [])],
    )
    app.state.services = services
    app.state.center_maps = CenterMaps(services.jurisdiction)
    openapi_doc = build_openapi({**AUDIT_PATHS, **PROOF_PATHS})
    add_ingest_openapi(openapi_doc)
    add_incident_list_openapi(openapi_doc)
    add_map_openapi(openapi_doc)
    add_directory_openapi(openapi_doc)
    add_registry_openapi(openapi_doc)
    add_disclosure_openapi(openapi_doc)
    add_orders_openapi(openapi_doc)
    add_assessment_openapi(openapi_doc)
    app.state.openapi = secure_openapi(openapi_doc)
    return app
