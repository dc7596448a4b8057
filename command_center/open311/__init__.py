"""Open311 GeoReport v2 (`/open311/v2/`): see endpoints.py."""

from __future__ import annotations

from starlette.routing import Route

from command_center.open311.endpoints import (
    discovery,
    get_request,
    get_requests,
    get_token,
    list_services,
    post_request,
    service_definition,
)

PREFIX = "/open311/v2"

routes = [
    Route(f"{PREFIX}/discovery.{{format}}", discovery, methods=["GET"]),
    Route(f"{PREFIX}/services.{{format}}", list_services, methods=["GET"]),
    Route(f"{PREFIX}/services/{{service_code}}.{{format}}", service_definition, methods=["GET"]),
    Route(f"{PREFIX}/requests.{{format}}", get_requests, methods=["GET"]),
    Route(f"{PREFIX}/requests.{{format}}", post_request, methods=["POST"]),
    Route(f"{PREFIX}/requests/{{request_id}}.{{format}}", get_request, methods=["GET"]),
    Route(f"{PREFIX}/tokens/{{request_id}}.{{format}}", get_token, methods=["GET"]),
]
