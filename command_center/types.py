"""Shared types: what the composition root hands the app (typed state, no globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import HTTPConnection

from command_center.hub import Hub, ViewSource
from command_center.incident_query import IncidentRows
from command_center.intake import Intake, RateLimiter
from command_center.ledger import Ledger
from command_center.metrics import Metrics
from command_center.open311_catalog import Open311
from command_center.problems import Problem
from command_center.revocation import Revocations
from command_center.throttle import FailureThrottle
from domain.alert_service import AlertService
from domain.application import IncidentService
from domain.directory import Directory
from domain.incident import Actor, Incident
from domain.jurisdiction import Jurisdiction
from domain.order_service import SupervisionOrders
from projections.assessment import DEFAULT_WEIGHTS, Weights

Authenticate = Callable[[HTTPConnection], Actor]
# a /readyz check (command_center/health.py): (passed, what it saw)
ReadyCheck = Callable[[], Awaitable[tuple[bool, str]]]
# (actor, permission, centers the data belongs to[, assignee]) -> None, or raise Problem(403)
Authorize = Callable[..., None]
# websocket handshake -> None when its Origin is allowed, else the reason it is refused
CheckOrigin = Callable[[HTTPConnection], "str | None"]


class AuditProofs(Protocol):
    """Merkle proofs of the sealed history (infra/security/proofs.py; docs/AUDIT-FORMAT.md).
    Each raises LookupError, with a message saying what the store holds, for a proof it
    cannot give."""

    def inclusion(self, notification_id: int, tree_size: int | None) -> dict[str, Any]: ...

    def consistency(self, first: int, second: int) -> dict[str, Any]: ...

    def incident(self, incident_id: str) -> dict[str, Any]: ...


class TimeTravel(Protocol):
    """A center's view as it was at a time, equal to a full refold (infra/runner/view_snapshots.py)."""

    def view_at(self, center: str, at: Any) -> dict[str, Any]: ...


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
    # Commits an incident's pending events from the event loop, without a worker thread per
    # request (group commit's writer: infra/store/loop_save.py); raises VersionConflict when
    # another command took its version. None: handlers save in a worker thread.
    save: Callable[[Incident], Awaitable[None]] | None = None
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
    proofs: AuditProofs | None = None  # Merkle proofs for auditors (None: not configured)
    time_travel: TimeTravel | None = None  # view?at= from snapshots (None: a full refold)
    # Dispatch targets and names (GET /api/directory); None: not configured
    directory: Directory | None = None
    # (camera id, name, grid) of the camera registry, for the console's names (GET /api/directory)
    cameras: list[tuple[str, str, str]] = field(default_factory=list)
    # The grid registry's projection (command_center/registry.py RegistryState); None: not
    # configured (the directory file alone names dispatch targets, and dispatch is not checked)
    registry: Any = None
    # Public disclosure (command_center/disclosure.py DisclosureState); None: not configured
    disclosure: Any = None
    # operations (README "Operations"): /readyz checks by name; where /metrics is served
    readiness: dict[str, ReadyCheck] = field(default_factory=dict)
    http_metrics: bool = True  # count and time every HTTP request (LINKAGE_HTTP_METRICS)
    metrics_port: int = 0  # /metrics on a port of its own, not the app's
    metrics_token: str = ""  # when set, /metrics on the app's port needs it as a bearer token
    open311: Open311 | None = None  # Open311 GeoReport v2 (None: not configured)
    # Step 4 (issue #14): supervision orders, and the ledger folding them and the assessment
    orders: SupervisionOrders | None = None
    ledger: Ledger | None = None
    weights: Weights = DEFAULT_WEIGHTS
