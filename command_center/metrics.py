"""Operational counters of the command center and `GET /metrics` (Prometheus text format).

The registry belongs to the app's `Services`, not to the process: two apps in one process
(tests) count apart. `/metrics` is unauthenticated like `/healthz`: it carries counts only.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from command_center.protocol import CAUSES


class Metrics:
    """The counters, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._closed = Counter(
            "linkage_console_closed",
            "Console websockets the server closed, by reason",
            ["reason"],
            registry=self.registry,
        )
        for cause in CAUSES:  # every reason is exported from the start, at 0
            self._closed.labels(cause)

    def console_closed(self, cause: str) -> None:
        self._closed.labels(cause).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def metrics(request: Request) -> Response:
    rendered = request.app.state.services.metrics.render()
    return Response(rendered, media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics, methods=["GET"])]
