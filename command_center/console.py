"""The console websocket: snapshot, then deltas with epoch and seq; resume on reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from command_center.auth import RateLimit, token_expiry
from command_center.hub import Frame, Subscription, snapshot_frame
from command_center.problems import Problem
from command_center.types import Services
from domain import access

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008
CLOSE_TOO_SLOW = 4008  # fell too far behind too often
CLOSE_TOKEN_EXPIRED = 4401  # the console client treats 4401 as "log in again"


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class TooSlow(Exception):
    """A console that overflowed its queue more often than allowed."""


class ConsoleSession:
    """One console connection: keeps (epoch, seq) of what it sent; never leaves a gap."""

    def __init__(self, ws: WebSocket, svc: Services, center: str, sub: Subscription) -> None:
        self.ws = ws
        self.svc = svc
        self.center = center
        self.sub = sub
        self.epoch = ""
        self.seq = -1
        self.resyncs = 0
        self.lock = asyncio.Lock()  # one sender at a time: the pump or a client request

    async def send(self, text: str) -> None:
        await self.ws.send_text(text)

    async def send_snapshot(self) -> None:
        self.sub.drain()
        epoch, seq, view = await _maybe(self.svc.views.snapshot(self.center))
        # Encode now: the view is live and changes after this point.
        text = snapshot_frame(self.center, epoch, seq, view)
        self.epoch, self.seq = epoch, seq
        await self.send(text)

    async def start(self, resume: dict[str, Any] | None) -> None:
        if resume is not None:
            epoch, seq = resume.get("epoch"), resume.get("seq")
            if isinstance(epoch, str) and isinstance(seq, int) and seq >= 0:
                frames = await _maybe(self.svc.views.history(self.center, epoch, seq))
                if frames is not None:
                    self.epoch, self.seq = epoch, seq
                    for frame in frames:
                        await self.deliver(frame)
                    return
        await self.send_snapshot()

    async def deliver(self, frame: Frame) -> None:
        epoch, seq, text = frame
        if not text:  # a marker: the view is at (epoch, seq)
            if (epoch, seq) != (self.epoch, self.seq):
                await self.send_snapshot()
            return
        if epoch != self.epoch:
            await self.send_snapshot()
        elif seq <= self.seq:
            return  # already covered by the snapshot or history
        elif seq != self.seq + 1:
            await self.send_snapshot()  # a gap: never skip silently
        else:
            self.seq = seq
            await self.send(text)

    async def pump(self) -> None:
        while True:
            frame = await self.sub.queue.get()
            async with self.lock:
                if self.sub.overflowed:
                    self.resyncs += 1
                    if self.resyncs > self.svc.max_overflows:
                        raise TooSlow(self.resyncs)
                    await self.send_snapshot()
                    continue
                await self.deliver(frame)


async def _reader(ws: WebSocket, inbox: asyncio.Queue[dict[str, Any] | None],
                  limit: RateLimit | None = None) -> None:
    try:
        while True:
            text = await ws.receive_text()
            if limit is not None and not limit.take():
                await ws.close(CLOSE_POLICY, "message rate limit exceeded")
                await inbox.put(None)
                return
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError:
                message = {"type": "invalid"}
            await inbox.put(message if isinstance(message, dict) else {"type": "invalid"})
    except (WebSocketDisconnect, RuntimeError, KeyError):
        await inbox.put(None)


async def _expire(ws: WebSocket, at: float) -> None:
    """Close the socket when the token that opened it expires."""
    await asyncio.sleep(max(0.0, at - time.time()))
    with contextlib.suppress(Exception):
        await ws.close(CLOSE_TOKEN_EXPIRED, "token expired")


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


async def console_endpoint(ws: WebSocket) -> None:
    svc: Services = ws.app.state.services
    center = ws.query_params.get("center", "")
    if not await _admit(ws, svc, center):
        return
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",")]
    await ws.accept(subprotocol="bearer" if offered and offered[0].lower() == "bearer" else None)
    expires = token_expiry(ws)
    if not svc.views.has_center(center):
        await ws.send_text(
            orjson.dumps(
                {"type": "error", "detail": f"center {center!r} not found; expected a city, "
                 "district or township id in ?center="}
            ).decode()
        )
        await ws.close(CLOSE_POLICY)
        return
    inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(64)
    limit = RateLimit(svc.ws_rate, svc.ws_burst) if svc.ws_rate > 0 else None
    reader = asyncio.create_task(_reader(ws, inbox, limit))
    expiry = asyncio.create_task(_expire(ws, expires)) if expires is not None else None
    sub = svc.hub.subscribe(center)
    session = ConsoleSession(ws, svc, center, sub)
    pump: asyncio.Task[None] | None = None
    try:
        first: dict[str, Any] | None
        try:
            first = await asyncio.wait_for(inbox.get(), svc.resume_wait)
        except TimeoutError:
            first = {}
        if first is None:
            return
        await session.start(first if first.get("type") == "resume" else None)
        pump = asyncio.create_task(session.pump())
        while True:
            inbox_get = asyncio.create_task(inbox.get())
            done, _ = await asyncio.wait({inbox_get, pump}, return_when=asyncio.FIRST_COMPLETED)
            if pump in done:
                inbox_get.cancel()
                try:
                    pump.result()
                except TooSlow as exc:
                    log.info("closing console for %s: fell behind %s times", center, exc)
                    await ws.close(CLOSE_TOO_SLOW, "too slow: fell behind too many times")
                return
            message = inbox_get.result()
            if message is None:
                return
            kind = message.get("type")
            async with session.lock:
                if kind == "ping":
                    await ws.send_text('{"type":"pong"}')
                elif kind in ("resume", "snapshot"):
                    await session.send_snapshot()
    except (WebSocketDisconnect, RuntimeError, ConnectionError):
        pass
    finally:
        svc.hub.unsubscribe(sub)
        for task in (reader, pump, expiry):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await ws.close()
