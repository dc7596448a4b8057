"""Operational metrics of the command center and `GET /metrics` (Prometheus text format).

The registry belongs to the app's `Services`, not to the process: two apps in one process
(tests) count apart. Counters are counted where things happen; gauges (consoles connected, the
runner's and the sealer's lag, the ingest writer's queue) are read when /metrics is scraped, so
they cost the command path nothing. `/metrics` is unauthenticated like `/healthz` (it carries
counts only) unless LINKAGE_METRICS_TOKEN is set, or it is served on LINKAGE_METRICS_PORT
instead (infra/runtime/metrics_server.py); see README "Operations".
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from command_center.problems import problem_response
from command_center.protocol import CAUSES
from command_center.schemas import ACTION_BODIES

Read = Callable[[], float | None]
ReadLabelled = Callable[[], Iterable[tuple[Sequence[str], float]]]
# Routes whose POST is a command: (route path, the action it runs when not in the path).
COMMAND_ROUTES = {
    "/api/incidents": "report",
    "/api/incidents/{incident_id}/{action}": None,
    "/open311/v2/requests.{format}": "report",
}
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Reads(Collector):
    """Gauges and counters whose values are read from their owners when scraped."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, str, str, Read]] = []
        self.labelled: list[tuple[str, str, Sequence[str], ReadLabelled]] = []

    def collect(self) -> Iterator[Metric]:
        for kind, name, documentation, read in self.reads:
            try:
                value = read()
            except Exception:  # an owner that cannot answer now (store down) is left out
                continue
            if value is None:
                continue
            if kind == "counter":
                yield CounterMetricFamily(name, documentation, value=value)
            else:
                yield GaugeMetricFamily(name, documentation, value=value)
        for name, documentation, labels, read_labelled in self.labelled:
            family = CounterMetricFamily(name, documentation, labels=labels)
            for values, count in read_labelled():
                family.add_metric(list(values), count)
            yield family


class Metrics:
    """The metrics of one app, in a registry of their own."""

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
        self.http_requests = Counter(
            "linkage_http_requests", "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"], registry=self.registry)
        self.http_latency = Histogram(
            "linkage_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route and method",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.commands = Counter(
            "linkage_commands", "Commands on incidents, by action and outcome (ok or the status)",
            ["action", "outcome"], registry=self.registry)
        self.frames = Counter(
            "linkage_console_frames",
            "Console frames: sent (deltas and snapshots), dropped (a full queue), resynced "
            "(a snapshot instead of the dropped deltas)", ["kind"], registry=self.registry)
        for kind in ("sent", "dropped", "resynced"):
            self.frames.labels(kind)
        self.outbound = Counter(
            "linkage_outbound_deliveries", "Outbound deliveries, by subscription and outcome",
            ["subscription", "outcome"], registry=self.registry)
        self._reads = _Reads()
        self.registry.register(self._reads)

    def console_closed(self, cause: str) -> None:
        self._closed.labels(cause).inc()

    def gauge(self, name: str, documentation: str, read: Read) -> None:
        """Export `read()` as a gauge at every scrape (None or an error: left out)."""
        self._reads.reads.append(("gauge", name, documentation, read))

    def counter(self, name: str, documentation: str, read: Read) -> None:
        """Export `read()`, a count kept by its owner, as a counter (`name` without _total)."""
        self._reads.reads.append(("counter", name, documentation, read))

    def labelled_counter(self, name: str, documentation: str, labels: Sequence[str],
                         read: ReadLabelled) -> None:
        """Export counts kept by their owner, by label values, as one counter family."""
        self._reads.labelled.append((name, documentation, labels, read))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def watch(metrics: Metrics, svc: Any) -> None:
    """The metrics every app exports from its services: consoles connected, frames published,
    alerts received by path and outcome (the counts GET /api/ingest/stats shows)."""
    metrics.gauge("linkage_consoles_connected", "Console websockets open on this process",
                  svc.hub.count)
    metrics.counter("linkage_console_frames_published", "Deltas the fan-out handed this "
                    "process's hub", lambda: svc.hub.published)
    svc.hub.on_written = metrics.frames.labels("sent").inc  # deltas the hub wrote itself

    def ingest_counts() -> list[tuple[Sequence[str], float]]:
        counts = dict(svc.intake.stats.counts)
        return [(tuple(key.split(".", 1)), n) for key, n in sorted(counts.items())
                if "." in key and not key.startswith("alerts.")]

    def alert_outcomes() -> list[tuple[Sequence[str], float]]:
        counts = dict(svc.intake.stats.counts)
        return [((key.split(".", 1)[1],), n) for key, n in sorted(counts.items())
                if key.startswith("alerts.")]

    metrics.labelled_counter("linkage_ingest_alerts", "Alerts received, by path "
                             "(http, ws, mqtt, cap) and outcome (accepted, rejected, "
                             "rate_limited, unavailable, ...)", ["path", "outcome"], ingest_counts)
    metrics.labelled_counter("linkage_ingest_alerts_stored", "Alerts stored, by what they did "
                             "(created, updated, ended, duplicate)", ["status"], alert_outcomes)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "unmatched"  # a 404: never the raw path (label values must stay few)


class HttpMetrics:
    """Pure ASGI middleware: counts every HTTP request by route template and status, times it,
    and counts the commands among them by action and outcome."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route, method = _route_of(scope), scope["method"]
            self.metrics.http_requests.labels(route, method, str(status)).inc()
            self.metrics.http_latency.labels(route, method).observe(
                time.perf_counter() - started)
            if method == "POST" and route in COMMAND_ROUTES:
                action = COMMAND_ROUTES[route] or str(
                    scope.get("path_params", {}).get("action", ""))
                if action in ACTION_BODIES or action == "report":  # label values stay few
                    outcome = "ok" if 200 <= status < 300 else str(status)
                    self.metrics.commands.labels(action, outcome).inc()


def metrics_response(metrics: Metrics) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def metrics(request: Request) -> Response:
    svc: Any = request.app.state.services
    token: str = svc.metrics_token
    if svc.metrics_port:
        return problem_response(404, "metrics are served on their own port "
                                "(LINKAGE_METRICS_PORT), not on this one", instance="/metrics")
    if token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return problem_response(401, "metrics need 'Authorization: Bearer <token>' with "
                                    "LINKAGE_METRICS_TOKEN", instance="/metrics",
                                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    return metrics_response(svc.metrics)


routes = [Route("/metrics", metrics, methods=["GET"])]
