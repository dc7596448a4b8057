"""The console websocket: a thin driver doing the I/O that `command_center/protocol.py` decides.

Three tasks per connection: the reader feeds client messages to the protocol, the pump sends
what the protocol says next (one send at a time, each bounded by the send timeout), and an
optional timer closes the socket when the token that opened it expires. While the pump waits
with nothing to send, the hub writes live deltas through the server's `FrameWriter` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from command_center.auth import RateLimit, token_expiry
from command_center.hub import FRAME_WRITER, Subscription
from command_center.problems import Problem
from command_center.protocol import (
    CLOSE_POLICY,
    CLOSE_TOKEN_EXPIRED,
    CLOSE_TOO_SLOW,
    CLOSE_UNSUPPORTED,
    ClientMessage,
    Close,
    Console,
    Send,
    TakeSnapshot,
    error_frame,
    parse,
)
from command_center.types import Services
from domain import access

__all__ = ["CLOSE_POLICY", "CLOSE_TOKEN_EXPIRED", "CLOSE_TOO_SLOW", "ConsoleSession",
           "console_endpoint"]

log = logging.getLogger(__name__)


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class ConsoleSession:
    """One console connection: sends what its protocol state asks for, in order."""

    def __init__(self, ws: WebSocket, svc: Services, sub: Subscription) -> None:
        self.ws = ws
        self.svc = svc
        self.sub = sub
        self.console = sub.console
        self.center = sub.center

    async def start(self, first: ClientMessage | None) -> None:
        """Begin from the first message: fetch the history a resume asks for."""
        resume = self.console.start(first)
        if resume is not None:
            frames = await _maybe(self.svc.views.history(self.center, resume.epoch, resume.seq))
            self.console.resumed(resume, frames)
        self.sub.ready.set()

    def _count(self, dropped: int, resyncs: int) -> tuple[int, int]:
        """Add what the protocol dropped and resynced since last time to the metrics."""
        console, frames = self.console, self.svc.metrics.frames
        if console.dropped > dropped:
            frames.labels("dropped").inc(console.dropped - dropped)
        if console.resyncs > resyncs:
            frames.labels("resynced").inc(console.resyncs - resyncs)
        return console.dropped, console.resyncs

    async def pump(self) -> Close:
        """Send until the protocol says close; returns that Close (not sent yet). While it waits
        with nothing to send, the hub may write live deltas to the socket itself (`idle`)."""
        counted = (0, 0)
        while True:
            step = self.console.next_step()
            counted = self._count(*counted)
            if step is None:
                self.sub.idle = True
                await self.sub.ready.wait()
                self.sub.idle = False
                self.sub.ready.clear()
                continue
            if isinstance(step, Close):
                return step
            if not await self._send(step):
                return self.console.send_timed_out()

    async def _send(self, step: Send | TakeSnapshot) -> bool:
        """Send one frame; False when it did not go out within the send timeout. (Its own frame:
        an idle console must not keep its snapshot and the view it came from alive.)"""
        if isinstance(step, Send):
            text = step.text
        else:
            epoch, seq, view = await _maybe(self.svc.views.snapshot(self.center))
            text = self.console.snapshot(epoch, seq, view)
        try:
            await asyncio.wait_for(self.ws.send_text(text), self.console.send_timeout)
        except TimeoutError:
            return False
        self.svc.metrics.frames.labels("sent").inc()
        return True


async def _read(ws: WebSocket, sub: Subscription, first: asyncio.Future[ClientMessage | None],
                limit: RateLimit | None) -> tuple[int, str]:
    """Hand client messages to the protocol until the client is gone: (close code, reason)."""
    console = sub.console
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return int(message.get("code", 1000)), str(message.get("reason") or "")
        text = message.get("text")
        if limit is not None and not limit.take():
            console.close(CLOSE_POLICY, "message rate limit exceeded", "rate_limit")
        elif text is None:
            console.close(CLOSE_UNSUPPORTED, "binary frames are not accepted; "
                          "send JSON text frames", "binary_frame")
        elif not first.done():
            first.set_result(parse(text))
            continue
        else:
            console.receive(parse(text))
        if not first.done():
            first.set_result(None)
        sub.ready.set()


async def _expire(sub: Subscription, at: float) -> None:
    """Close the socket when the token that opened it expires."""
    await asyncio.sleep(max(0.0, at - time.time()))
    sub.console.close(CLOSE_TOKEN_EXPIRED, "token expired", "token_expired")
    sub.ready.set()


async def _admit(ws: WebSocket, svc: Services, center: str) -> bool:
    """Origin, token and subscription permission, checked before accept (refusal: HTTP 403)."""
    refused = svc.check_origin(ws)
    try:
        if refused is not None:
            raise Problem(403, refused)
        actor = svc.authenticate(ws)
        if svc.views.has_center(center):
            svc.authorize(actor, access.SUBSCRIBE, svc.jurisdiction.centers_for(center))
    except Problem as exc:
        log.info("console refused before accept: %s", exc.detail)
        await ws.close(CLOSE_POLICY, exc.detail[:120])
        return False
    return True


async def _close(ws: WebSocket, code: int, reason: str, send_timeout: float) -> None:
    # A console that does not read cannot take a close frame either. The server runtime
    # (infra/runtime/server.py) resets it after send_timeout; this bounds other servers.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code, reason), 2 * send_timeout)


async def console_endpoint(ws: WebSocket) -> None:
    svc: Services = ws.app.state.services
    center = ws.query_params.get("center", "")
    if not await _admit(ws, svc, center):
        return
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",")]
    await ws.accept(subprotocol="bearer" if offered and offered[0].lower() == "bearer" else None)
    expires = token_expiry(ws)
    if not svc.views.has_center(center):
        await ws.send_text(error_frame(f"center {center!r} not found; expected a city, "
                                       "district or township id in ?center="))
        await ws.close(CLOSE_POLICY)
        return
    console = Console(center, svc.hub.queue_size, svc.max_overflows, svc.send_timeout)
    sub = svc.hub.subscribe(center, console)
    sub.writer = ws.scope.get("extensions", {}).get(FRAME_WRITER)  # None: every frame via send
    session = ConsoleSession(ws, svc, sub)
    first: asyncio.Future[ClientMessage | None] = asyncio.get_running_loop().create_future()
    limit = RateLimit(svc.ws_rate, svc.ws_burst) if svc.ws_rate > 0 else None
    reader = asyncio.create_task(_read(ws, sub, first, limit))
    expiry = asyncio.create_task(_expire(sub, expires)) if expires is not None else None
    pump: asyncio.Task[Close] | None = None
    closing: Close | None = None
    try:
        started: set[asyncio.Future[Any]] = {first, reader}
        await asyncio.wait(started, timeout=svc.resume_wait, return_when=asyncio.FIRST_COMPLETED)
        if not reader.done():
            await session.start(first.result() if first.done() else None)
            pump = asyncio.create_task(session.pump())
            await asyncio.wait({reader, pump}, return_when=asyncio.FIRST_COMPLETED)
        if pump is not None and pump.done():
            closing = pump.result()
        else:
            code, reason = reader.result()
            cause = Console.disconnected(code, reason)
            if cause is not None:
                log.info("console for %s closed by the server: %s (%d)", center, reason, code)
                svc.metrics.console_closed(cause)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        svc.hub.unsubscribe(sub)
        for task in (reader, pump, expiry):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if closing is not None:
            log.info("closing console for %s: %s", center, closing.reason)
            svc.metrics.console_closed(closing.cause)
            await _close(ws, closing.code, closing.reason, svc.send_timeout)
        elif ws.application_state == WebSocketState.CONNECTED:
            await _close(ws, 1000, "", svc.send_timeout)
