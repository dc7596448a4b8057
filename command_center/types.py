"""Shared types: what the composition root hands the app (typed state, no globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from command_center.hub import Hub, ViewSource
from command_center.incident_query import IncidentRows
from command_center.intake import Intake, RateLimiter
from command_center.ledger import Ledger
from command_center.metrics import Metrics
from command_center.problems import Problem
from command_center.revocation import Revocations
from command_center.throttle import FailureThrottle
from domain.alert_service import AlertService
from domain.application import IncidentService
from domain.incident import Actor
from domain.jurisdiction import Jurisdiction
from domain.order_service import SupervisionOrders
from projections.assessment import DEFAULT_WEIGHTS, Weights

Authenticate = Callable[[HTTPConnection], Actor]
# (actor, permission, centers the data belongs to[, assignee]) -> None, or raise Problem(403)
Authorize = Callable[..., None]
# websocket handshake -> None when its Origin is allowed, else the reason it is refused
CheckOrigin = Callable[[HTTPConnection], "str | None"]


def unconfigured(conn: HTTPConnection) -> Actor:
    """Deny by default: a Services built without identity (see infra/bootstrap.py
    `auth_hooks`) authenticates no one."""
    raise Problem(503, "identity is not configured on this server; the composition root must "
                  "pass authenticate/authorize hooks (infra.bootstrap.auth_hooks)")


def deny_all(actor: Actor, permission: str, centers: Sequence[str], assignee: Any = None) -> None:
    """Deny by default: without an access policy nothing is allowed."""
    raise Problem(403, f"no access policy is configured; {permission} is denied")


@dataclass
class Services:
    jurisdiction: Jurisdiction
    incidents: IncidentService
    hub: Hub
    views: ViewSource
    # The per-incident read model (GET /api/incidents); None: not configured
    incident_rows: IncidentRows | None = None
    authenticate: Authenticate = unconfigured
    authenticate_feed: Authenticate = unconfigured
    authorize: Authorize = deny_all
    max_body_bytes: int = 1 << 20
    resume_wait: float = 1.0
    max_overflows: int = 3  # snapshots a slow console gets before it is closed (4008)
    send_timeout: float = 10.0  # seconds a console send may take before it is closed (4008)
    metrics: Metrics = field(default_factory=Metrics)
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Any]] = field(default_factory=list)
    mode: str = "embedded"
    # Camera and sensor alerts (None: alert ingest not configured)
    alerts: AlertService | None = None
    intake: Intake = field(default_factory=lambda: Intake(RateLimiter(50_000, 100_000)))
    # security (command_center/auth.py); the defaults refuse
    check_origin: CheckOrigin = lambda conn: "no Origin allowlist is configured"
    ws_rate: float = 0.0  # console messages per second per connection (0: unlimited)
    ws_burst: int = 20
    throttle: FailureThrottle | None = None  # authentication failures per address (None: off)
    revocations: Revocations = field(default_factory=Revocations)  # feed keys revoked
    # Step 4 (issue #14): supervision orders, and the ledger folding them and the assessment
    orders: SupervisionOrders | None = None
    ledger: Ledger | None = None
    weights: Weights = DEFAULT_WEIGHTS
