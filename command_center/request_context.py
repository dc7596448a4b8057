"""The request id, and who acts for which center, of the request being served.

`RequestIds` (pure ASGI middleware) takes the id from `X-Request-ID` or makes one, returns it in
the response's `X-Request-ID`, and keeps it in a context variable for the request's task and the
threads it hands work to (Starlette copies the context into its thread pool): the log formatter
(infra/runtime/logs.py) reads it, and `stamped` adds it to the actor every event records.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from command_center.problems import problem_response
from domain.incident import Actor

REQUEST_ID: ContextVar[str | None] = ContextVar("linkage_request_id", default=None)
ACTOR: ContextVar[str | None] = ContextVar("linkage_actor", default=None)
CENTER: ContextVar[str | None] = ContextVar("linkage_center", default=None)

HEADER = "X-Request-ID"
_HEADER = HEADER.lower().encode()
MAX_LENGTH = 128
_VALID = re.compile(rf"[A-Za-z0-9._:@/+=-]{{1,{MAX_LENGTH}}}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: str) -> bool:
    return _VALID.fullmatch(value) is not None


class RequestIds:
    """Gives every HTTP request and websocket an id; a malformed `X-Request-ID` is a 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sent = [v for k, v in scope.get("headers", ()) if k == _HEADER]
        request_id = sent[-1].decode("latin-1").strip() if sent else ""
        if request_id and not valid_request_id(request_id):
            if scope["type"] == "http":
                response = problem_response(
                    400, f"header {HEADER} must be 1 to {MAX_LENGTH} characters of letters, "
                    f"digits and ._:@/+=-; got {request_id[:40]!r}"
                    f"{' (truncated)' if len(request_id) > 40 else ''}",
                    instance=scope.get("path"))
                await response(scope, receive, send)
                return
            request_id = ""  # a websocket gets an id of ours (its handshake has no error body)
        request_id = request_id or new_request_id()
        raw = request_id.encode("latin-1")
        tokens = (REQUEST_ID.set(request_id), ACTOR.set(None), CENTER.set(None))
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                headers = [(k, v) for k, v in message.get("headers", ()) if k != _HEADER]
                message = {**message, "headers": [*headers, (_HEADER, raw)]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(tokens[0])
            ACTOR.reset(tokens[1])
            CENTER.reset(tokens[2])


def noted(actor: Actor) -> Actor:
    """Note the actor for the logs; the actor with the request id, for the events it records."""
    ACTOR.set(actor["user"])
    CENTER.set(actor.get("center"))
    request_id = REQUEST_ID.get()
    if request_id is None:
        return actor
    return {**actor, "request_id": request_id}


def stamped(authenticate: Callable[[HTTPConnection], Actor]
            ) -> Callable[[HTTPConnection], Actor]:
    """An authenticate hook whose actors are `noted`: every event a request records carries
    its request id."""
    if getattr(authenticate, "linkage_stamped", False):
        return authenticate

    def wrapper(conn: HTTPConnection) -> Actor:
        return noted(authenticate(conn))

    wrapper.linkage_stamped = True  # type: ignore[attr-defined]
    return wrapper
