"""Client side of the fan-out-under-load benchmark (#17 target 3), in a process of its own.

    python -m bench._fanout_consoles WS_URL TOKEN OUT CENTER:COUNT[,CENTER:COUNT...]

Opens COUNT consoles on each CENTER (`WS_URL/ws/console?center=…&token=…`, no permessage-deflate
offered), sends `hello`, prints "ready" once every console holds its snapshot, then records for
every frame a console receives its wall-clock time (`time.time()`, taken once per read from the
socket) and the view's `position` it carries (the last notification id folded into that center:
a delta's `set ["position"]`, a snapshot's `view.position`). On a line on stdin it closes the
consoles and writes OUT (JSON): {"consoles": [{"center", "t": [...], "p": [...]}], "snapshots":
snapshots after the first, "without_position": deltas that carried none, "cpu_s": this
process's CPU seconds}.

A minimal websocket client on asyncio's Protocol (RFC 6455: the upgrade, unmasked frames from
the server, masked pong and close from the client): a websockets connection per console costs
a task wake-up and Python frame parsing per message, which on this 2-core machine took as much
CPU as the server it measured. A frame is not parsed beyond one `rfind` for the position.
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import struct
import sys
import time
from array import array
from pathlib import Path
from urllib.parse import urlsplit

import orjson

POSITION = b'["position"],"value":'
DELTA = b'{"type":"delta"'


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked frame from the client (payloads under 126 bytes: hello, pong, close)."""
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def position_of(message: bytes) -> int | None:
    """The position a server frame carries; None for a delta without one or another frame."""
    if message.startswith(DELTA):
        at = message.rfind(POSITION)
        if at < 0:
            return None
        end = stop = at + len(POSITION)
        while 48 <= message[stop] <= 57:
            stop += 1
        return int(message[end:stop])
    frame = orjson.loads(message)
    if frame.get("type") == "snapshot":
        return int(frame["view"].get("position", 0))
    return None


class Console(asyncio.Protocol):
    def __init__(self, center: str, request: bytes, ready: asyncio.Future[None]) -> None:
        self.center = center
        self.request = request
        self.ready = ready
        self.t = array("d")
        self.p = array("q")
        self.snapshots = 0
        self.without_position = 0
        self.buffer = b""
        self.upgraded = False
        self.fragments: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed before the snapshot"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer + data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(buffer[:200].decode(errors="replace")))
                return
            self.upgraded = True
            buffer = buffer[end + 4:]
            assert self.transport is not None
            self.transport.write(client_frame(1, b'{"type":"hello"}'))
        at = 0
        size = len(buffer)
        while size - at >= 2:
            head, length = buffer[at], buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                if size - at < 4:
                    break
                length = struct.unpack_from("!H", buffer, start)[0]
                start += 2
            elif length == 127:
                if size - at < 10:
                    break
                length = struct.unpack_from("!Q", buffer, start)[0]
                start += 8
            if size - start < length:
                break
            payload = buffer[start:start + length]
            at = start + length
            self.frame(head & 0x0F, bool(head & 0x80), payload, now)
        self.buffer = buffer[at:]

    def frame(self, opcode: int, fin: bool, payload: bytes, now: float) -> None:
        if opcode in (0, 1):  # text, or a continuation of one
            self.fragments.append(payload)
            if not fin:
                return
            message = b"".join(self.fragments) if len(self.fragments) > 1 else payload
            self.fragments = []
            position = position_of(message)
            if position is None:
                if message.startswith(DELTA):
                    self.without_position += 1
                return
            if not message.startswith(DELTA):
                self.snapshots += 1
            self.t.append(now)
            self.p.append(position)
            if not self.ready.done():
                self.ready.set_result(None)
        elif opcode == 9:  # ping
            assert self.transport is not None
            self.transport.write(client_frame(10, payload[:125]))
        elif opcode == 8:  # close: answer it, the server closes the connection
            assert self.transport is not None
            self.transport.write(client_frame(8, payload[:2]))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(8, struct.pack("!H", 1000)))


async def _open(host: str, port: int, path: str, center: str) -> Console:
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    for attempt in range(20):
        ready: asyncio.Future[None] = loop.create_future()
        try:
            _, console = await loop.create_connection(
                lambda: Console(center, request, ready), host, port)  # noqa: B023
            await asyncio.wait_for(ready, 60)
            return console
        except OSError:
            await asyncio.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"cannot open a console on {center}")


async def main(base: str, token: str, out: Path, spec: str) -> None:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    plan = [(c, int(n)) for c, n in (item.split(":") for item in spec.split(","))]
    wanted = [center for center, n in plan for _ in range(n)]
    consoles: list[Console] = []
    batch = 250  # below the listen backlog
    for start in range(0, len(wanted), batch):
        consoles += await asyncio.gather(*(
            _open(host, port, f"/ws/console?center={c}&token={token}", c)
            for c in wanted[start:start + batch]))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for console in consoles:
        console.close()
    await asyncio.wait([asyncio.ensure_future(c.closed) for c in consoles], timeout=10)
    for console in consoles:
        if console.transport is not None:
            console.transport.abort()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.write_bytes(orjson.dumps({
        "consoles": [{"center": c.center, "t": c.t.tolist(), "p": c.p.tolist()}
                     for c in consoles],
        "snapshots": sum(max(0, c.snapshots - 1) for c in consoles),
        "without_position": sum(c.without_position for c in consoles),
        "cpu_s": usage.ru_utime + usage.ru_stime}))
    print("written", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]))
