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

For the console fan-out (`command_center/hub.py`), each connection is also a `FrameWriter`, handed
to the app as the ASGI scope extension `linkage.frame_writer`: the hub writes a delta's frame to
every idle console in one pass, encoded once per publication, instead of waking a task per console
to go through the ASGI send. For that, permessage-deflate is negotiated without server context
takeover: each message is compressed on its own, so one compressed frame is valid for every
connection, and no connection keeps a compressor (~40 KiB of zlib state each) between messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import zlib
from collections.abc import Hashable
from typing import Any

import uvicorn
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.protocol import State
from websockets.server import ServerProtocol

from command_center.hub import FRAME_WRITER
from command_center.protocol import CLOSE_PING_TIMEOUT, PING_TIMEOUT_REASON
from infra.settings import Settings

# uvicorn's (and websockets') memory-saving deflate settings, plus no server context takeover.
DEFLATE_LEVEL, DEFLATE_MEMLEVEL = -1, 5
DEFLATE_SETTINGS = {"memLevel": DEFLATE_MEMLEVEL}


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config.ws_per_message_deflate:
            self.conn = ServerProtocol(
                extensions=[ServerPerMessageDeflateFactory(
                    server_no_context_takeover=True, server_max_window_bits=12,
                    client_max_window_bits=12, compress_settings=DEFLATE_SETTINGS)],
                max_size=self.config.ws_max_size, logger=self.conn.logger)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # the app's task starts later, with this scope
            extensions: dict[str, object] = self.scope["extensions"]  # type: ignore[assignment]
            extensions[FRAME_WRITER] = self

    # -- FrameWriter (command_center/hub.py) -----------------------------------------------------

    def can_write(self) -> bool:
        """Whether a frame written now goes out without waiting: open, and not paused."""
        return (self.handshake_complete and not self.close_sent and not self.disconnected
                and self.conn.state is State.OPEN  # not after a close frame either way
                and self.writable.is_set() and not self.transport.is_closing()
                and self._encoding() is not None)

    def write_text(self, text: str, encoded: dict[Hashable, bytes]) -> None:
        """Write `text` as one text frame; `encoded` holds the frame's bytes by encoding, shared
        by every connection a publication goes to."""
        self.transport.write(self._wire(text, encoded))

    def write_texts(self, frames: list[tuple[str, dict[Hashable, bytes]]]) -> None:
        """Several frames, in order, in one write (one syscall when the socket takes them)."""
        self.transport.write(b"".join([self._wire(text, encoded) for text, encoded in frames]))

    def _wire(self, text: str, encoded: dict[Hashable, bytes]) -> bytes:
        key = self._encoding()
        assert key is not None, "write_text without can_write()"
        wire = encoded.get(key)
        if wire is None:
            wire = encoded[key] = _encode(text.encode(), key)
        return wire

    def _encoding(self) -> tuple[int, int] | None:
        """(0, 0) plain; (1, window bits) deflated on its own; None: this connection's frames
        depend on its own state (deflate with context takeover) and cannot be shared."""
        extensions = self.conn.extensions
        if not extensions:
            return (0, 0)
        deflate = extensions[0]
        if len(extensions) == 1 and isinstance(deflate, PerMessageDeflate) \
                and deflate.local_no_context_takeover \
                and deflate.compress_settings == DEFLATE_SETTINGS:
            return (1, deflate.local_max_window_bits)
        return None

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


def _encode(data: bytes, encoding: tuple[int, int]) -> bytes:
    """A server's (unmasked) final text frame carrying `data` (RFC 6455 5.2), deflated as
    websockets deflates a message without context takeover (RFC 7692 7.2.1) when asked."""
    first = 0x81  # FIN, text
    if encoding[0]:
        encoder = zlib.compressobj(DEFLATE_LEVEL, wbits=-encoding[1], memLevel=DEFLATE_MEMLEVEL)
        data = (encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH))[:-4]
        first |= 0x40  # RSV1: a compressed message
    n = len(data)
    if n < 126:
        header = struct.pack("!BB", first, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + data


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
