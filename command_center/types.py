"""Shared types: what the composition root hands the app (typed state, no globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from command_center.hub import Hub, ViewSource
from domain.application import IncidentService
from domain.incident import Actor
from domain.jurisdiction import Jurisdiction

Authenticate = Callable[[HTTPConnection], Actor]
# (actor, permission, centers the data belongs to) -> None, or raise Problem(403)
Authorize = Callable[[Actor, str, Sequence[str]], None]


def anonymous_officer(conn: HTTPConnection) -> Actor:
    """Until identity is configured: every caller acts as the city duty officer."""
    return {"user": conn.headers.get("x-linkage-user", "duty-officer"), "role": "city_officer",
            "center": None}


def feed_anonymous(conn: HTTPConnection) -> Actor:
    """Until feed API keys are configured: every feed is accepted as 'feed'."""
    return {"user": conn.headers.get("x-linkage-feed", "feed"), "role": "feed", "center": None}


def allow_all(actor: Actor, permission: str, centers: Sequence[str]) -> None:
    """Until the access policy is configured: everything is allowed."""


@dataclass
class Services:
    jurisdiction: Jurisdiction
    incidents: IncidentService
    hub: Hub
    views: ViewSource
    wake: Callable[[], None] = lambda: None
    authenticate: Authenticate = anonymous_officer
    authenticate_feed: Authenticate = feed_anonymous
    authorize: Authorize = allow_all
    max_body_bytes: int = 1 << 20
    resume_wait: float = 1.0
    max_overflows: int = 3  # snapshots a slow console gets before it is closed (4008)
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Any]] = field(default_factory=list)
    mode: str = "embedded"
