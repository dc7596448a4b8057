"""The uvicorn server of `linkage serve`: its config, and a websocket protocol that never waits
forever on a peer that stopped reading.

uvicorn's websockets-sansio protocol awaits "writable" before every send, and closing a
transport waits for its unsent data to drain: a console that never reads would keep its
socket, its buffers (megabytes in the kernel) and its task forever. Here:
- a close the app asks for waits at most `send_timeout` for the buffer to drain, then the
  connection is reset; so is a transport that closes with unsent data (keepalive timeout,
  end of the app, closing handshake) and has not drained `send_timeout` later;
- a keepalive ping left unanswered reaches the app as a disconnect with code 1011 and its
  reason, so the app can count it (uvicorn reports it as a plain 1005);
- `send_buffer` bounds the kernel's send buffer of each websocket (0: the kernel's default).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

import uvicorn
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from command_center.protocol import CLOSE_PING_TIMEOUT, PING_TIMEOUT_REASON
from infra.settings import Settings


class _ResettingTransport:
    """A transport whose close() does not linger: data still unsent `linger` s later is dropped
    and the connection reset (RST), which frees the kernel's buffers too."""

    def __init__(self, transport: asyncio.Transport, linger: float) -> None:
        self.inner = transport
        self.linger = linger
        self._timer: asyncio.TimerHandle | None = None

    def close(self) -> None:
        self.inner.close()
        if self._timer is None and self.inner.get_write_buffer_size():
            self._timer = asyncio.get_running_loop().call_later(self.linger, self.reset)

    def reset(self) -> None:
        self._timer = None
        sock = self.inner.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.inner.abort()

    def lost(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    send_timeout: float = 10.0
    send_buffer: int = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.send_buffer > 0:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        self.transport = _ResettingTransport(self.transport, self.send_timeout)  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._resetting.lost()

    @property
    def _resetting(self) -> _ResettingTransport:
        transport = self.transport
        assert isinstance(transport, _ResettingTransport)
        return transport

    async def send(self, message: Any) -> None:
        if message["type"] == "websocket.close" and self.handshake_complete \
                and not self.writable.is_set():
            try:
                await asyncio.wait_for(self.writable.wait(), self.send_timeout)
            except TimeoutError:
                self._resetting.reset()
                raise ClientDisconnected() from None
        await super().send(message)

    def keepalive_timeout(self) -> None:
        if not (self.close_sent or self.transport.is_closing()):
            self.queue.put_nowait({"type": "websocket.disconnect", "code": CLOSE_PING_TIMEOUT,
                                   "reason": PING_TIMEOUT_REASON})
        super().keepalive_timeout()


def websocket_protocol(send_timeout: float, send_buffer: int = 0) -> type[BoundedWebSocketProtocol]:
    """The websocket protocol class for uvicorn, with these bounds."""
    return type("WebSocketProtocol", (BoundedWebSocketProtocol,),
                {"send_timeout": send_timeout, "send_buffer": send_buffer})


def server_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's config for the app, with the websocket limits of the settings."""
    return uvicorn.Config(
        app,
        ws=websocket_protocol(settings.ws_send_timeout, settings.ws_send_buffer),
        ws_max_size=settings.ws_max_size,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        lifespan="on",
        **options,
    )
