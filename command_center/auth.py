"""Authentication and authorization at the HTTP and websocket edge.

Credentials: `Authorization: Bearer <JWT>` (HTTP), `?token=` or
`Sec-WebSocket-Protocol: bearer, <JWT>` (websocket), `X-API-Key` or
`Authorization: ApiKey <key>` (feeds). The verifiers come from the composition
root; the decision comes from `domain.access`. Every 401 counts against the
client's address (command_center/throttle.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from command_center.problems import Problem
from command_center.revocation import FEED_KEY
from command_center.throttle import FailureThrottle
from domain.access import AccessPolicy
from domain.audit_trail import RECORDED_ROLES
from domain.incident import Actor

# token -> (actor, expiry in epoch seconds); raises ValueError with a reason
VerifyToken = Callable[[str], tuple[Actor, int]]
# API key -> the feed's actor, or None when unknown or revoked
VerifyKey = Callable[[str], Actor | None]
# API key as presented -> its key id (unverified), or None
KeyId = Callable[[str], str | None]
# (actor, action, target, details) -> None: appends an audit record
Record = Callable[[Actor, str, str, dict[str, Any]], None]

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="linkage"'}


def bearer_token(conn: HTTPConnection) -> str | None:
    """The bearer token of a request or websocket handshake, wherever it was put."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if conn.scope.get("type") == "websocket":
        protocols = [p.strip() for p in conn.headers.get("sec-websocket-protocol", "").split(",")]
        if len(protocols) >= 2 and protocols[0].lower() == "bearer" and protocols[1]:
            return protocols[1]
        token = conn.query_params.get("token")
        if token:
            return token
    return None


def api_key(conn: HTTPConnection) -> str | None:
    key = conn.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "apikey" and value.strip():
        return value.strip()
    return None


@dataclass
class Auth:
    """The `authenticate`, `authenticate_feed` and `authorize` hooks of `Services`."""

    verify_token: VerifyToken
    verify_key: VerifyKey
    policy: AccessPolicy
    record: Record | None = None
    origins: tuple[str, ...] = ()
    allow_missing_origin: bool = False
    key_id: KeyId = lambda key: None
    throttle: FailureThrottle | None = None

    def _refuse(self, conn: HTTPConnection, detail: str, headers: dict[str, str]) -> Problem:
        """A 401, counted against the client's address."""
        if self.throttle is not None:
            self.throttle.failed(conn.client.host if conn.client else "")
        return Problem(401, detail, headers=headers)

    def _note(self, conn: HTTPConnection, actor: Actor) -> None:
        """Record what an auditor or admin does, once per request."""
        if self.record is None or actor["role"] not in RECORDED_ROLES:
            return
        state = conn.scope.setdefault("state", {})
        if state.get("linkage_recorded"):
            return
        state["linkage_recorded"] = True
        kind = "subscribe" if conn.scope.get("type") == "websocket" else conn.scope.get("method")
        query = {k: v for k, v in conn.query_params.items() if k != "token"}
        self.record(actor, f"{kind} {conn.url.path}", conn.url.path, {"query": query})

    def authenticate(self, conn: HTTPConnection) -> Actor:
        """The verified actor of a request; 401 without valid credentials."""
        key = api_key(conn)
        if key is not None:
            return self.authenticate_feed(conn)
        token = bearer_token(conn)
        if token is None:
            raise self._refuse(conn, "missing credentials; expected 'Authorization: Bearer "
                               "<token>' (get one with `linkage token issue`)", CHALLENGE)
        try:
            actor, expires = self.verify_token(token)
        except ValueError as exc:
            raise self._refuse(conn, str(exc), CHALLENGE) from None
        conn.scope.setdefault("state", {})["linkage_token_exp"] = expires
        self._note(conn, actor)
        return actor

    def authenticate_feed(self, conn: HTTPConnection) -> Actor:
        """The feed actor of a request carrying an API key; 401 otherwise."""
        key = api_key(conn)
        challenge = {"WWW-Authenticate": 'ApiKey realm="linkage"'}
        if key is None:
            raise self._refuse(conn, "missing API key; expected header 'X-API-Key: <key>' "
                               "(issue one with `linkage feed-key issue`)", challenge)
        actor = self.verify_key(key)
        if actor is None:
            raise self._refuse(conn, "unknown or revoked API key", challenge)
        key_id = self.key_id(key)
        conn.scope.setdefault("state", {})["linkage_feed_key"] = key_id
        FEED_KEY.set(key_id)
        return actor

    def authorize(self, actor: Actor, permission: str, centers: Sequence[str],
                  assignee: Mapping[str, object] | None = None) -> None:
        """Nothing when allowed; 403 naming the reason when not."""
        decision = self.policy.decide(actor, permission, centers, assignee)
        if not decision.allowed:
            raise Problem(403, f"{actor['role']} {actor['user']} may not {permission}: "
                          f"{decision.reason}")

    def check_origin(self, conn: HTTPConnection) -> str | None:
        """None when the handshake's Origin is allowed; else why it is refused."""
        origin = conn.headers.get("origin")
        if not origin:
            return None if self.allow_missing_origin else "missing Origin header"
        if self.origins:
            return None if origin.rstrip("/") in self.origins else f"Origin {origin} not allowed"
        parts = urlsplit(origin)
        host = conn.headers.get("host", "")
        if parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower():
            return None
        return f"Origin {origin} is not this server ({host})"


class RateLimit:
    """A token bucket: `rate` messages a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.tokens = self.burst
        self.at = time.monotonic()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def feed_key(conn: HTTPConnection) -> str | None:
    """The id of the API key the connection authenticated with, if any."""
    value = conn.scope.get("state", {}).get("linkage_feed_key")
    return str(value) if value is not None else None


def token_expiry(conn: HTTPConnection) -> float | None:
    value = conn.scope.get("state", {}).get("linkage_token_exp")
    return float(value) if value is not None else None
