"""The feed websocket `/ws/feed`: camera gateways keep one connection open and get an ack per message.

Client → server: `{"ref": <ref>, "alert": {...}}` or `{"ref": <ref>, "alerts": [...]}` (≤ 1,000), where
the optional ref is a number or a string of up to 128 characters (it comes back with the reply).
Server → client, one per message, in order:
`{"type": "ack", "ref": ..., "accepted": n, "created": .., "results": [...]}` once the alerts are
committed, or `{"type": "error", "ref": ..., "status": 400|413|422|429, "detail": ...}`
(with `retry_after` seconds for 429). An error never closes the connection; nothing unacked is stored.
When the connection's API key is revoked, the socket is closed with 1008 (see command_center/revocation.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

import orjson
from msgspec import Meta, Struct
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from command_center.auth import feed_key
from command_center.decoding import JsonDecoder, off_loop
from command_center.feed_formats import AlertIn, FeedError, to_observation
from command_center.ingest import authenticate_feed, check_rate, store, summary
from command_center.problems import Problem
from command_center.types import Services
from domain.incident import DomainError
from domain.ingest_limits import MAX_REF

log = logging.getLogger(__name__)
CLOSE_POLICY = 1008


# A correlation id, echoed in the reply: kept small and flat, as every part of a message is.
Ref = Annotated[str, Meta(max_length=MAX_REF)] | int | float | None


class FeedMessage(Struct, forbid_unknown_fields=True, kw_only=True):
    ref: Ref = None
    alert: AlertIn | None = None
    alerts: list[AlertIn] | None = None


class _RefOnly(Struct):
    """The ref of a message that is otherwise invalid, for its error reply."""

    ref: Ref = None


_decoder = JsonDecoder(FeedMessage, "feed message")
_ref_decoder = JsonDecoder(_RefOnly, "feed message")


def _ref_of(text: str | bytes) -> Any:
    with contextlib.suppress(FeedError):
        return _ref_decoder.decode(text).ref
    return None


async def handle(svc: Services, actor: Any, text: str | bytes) -> dict[str, Any]:
    """One message → its ack or error reply."""
    ref = None
    try:
        try:
            message = await off_loop(_decoder.decode, text)
        except FeedError as exc:
            if exc.status == 422:
                ref = await off_loop(_ref_of, text)
            raise
        ref = message.ref
        items = message.alerts if message.alerts is not None else []
        if message.alert is not None:
            items = [message.alert, *items]
        if not items:
            raise FeedError(422, "a feed message needs 'alert' (one) or 'alerts' (a list)")
        if len(items) > svc.intake.max_batch:
            raise FeedError(413, f"message has {len(items)} alerts; at most "
                                 f"{svc.intake.max_batch} per message")
        observations = [to_observation(item, i) for i, item in enumerate(items)]
        check_rate(svc, actor, len(observations), "ws")
        outcomes = await run_in_threadpool(store, svc, actor, observations, "ws")
    except FeedError as exc:
        svc.intake.stats.add(f"ws.{exc.status}")
        return {"type": "error", "ref": ref, "status": exc.status, "detail": exc.detail}
    except DomainError as exc:  # unknown cameras and areas included
        svc.intake.stats.add("ws.422")
        return {"type": "error", "ref": ref, "status": 422, "detail": str(exc)}
    except Problem as exc:
        reply = {"type": "error", "ref": ref, "status": exc.status, "detail": exc.detail}
        if "Retry-After" in exc.headers:
            reply["retry_after"] = int(exc.headers["Retry-After"])
        return reply
    return {"type": "ack", "ref": ref, **summary(outcomes)}


async def _close_when_revoked(ws: WebSocket, revoked: asyncio.Event) -> None:
    await revoked.wait()
    with contextlib.suppress(Exception):
        await ws.close(CLOSE_POLICY, "API key revoked")


async def feed_endpoint(ws: WebSocket) -> None:
    svc: Services = ws.app.state.services
    await ws.accept()
    try:
        actor = authenticate_feed(svc, ws)
    except Problem as exc:
        await ws.send_text(orjson.dumps(
            {"type": "error", "status": exc.status, "detail": exc.detail}).decode())
        await ws.close(CLOSE_POLICY)
        return
    key_id = feed_key(ws)
    with svc.revocations.watch(key_id or "") as revoked:
        closer = asyncio.create_task(_close_when_revoked(ws, revoked))
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if revoked.is_set():
                    reply = {"type": "error", "status": 401, "detail": f"API key {key_id} was "
                             "revoked; nothing more is accepted on this connection"}
                else:
                    data = message.get("text")
                    if data is None:
                        data = message.get("bytes") or b""
                    reply = await handle(svc, actor, data)
                await ws.send_text(orjson.dumps(reply).decode())
                if reply.get("status") == 401:  # the writer process found the key revoked
                    revoked.set()
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            pass
        except Exception:
            log.exception("feed websocket failed")
            with contextlib.suppress(Exception):
                await ws.close(1011)
        finally:
            closer.cancel()
            with contextlib.suppress(BaseException):
                await closer
