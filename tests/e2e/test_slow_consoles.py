"""Consoles that stop reading are closed and counted; a console that reads keeps receiving.

Raw consoles complete the handshake, send hello, then never read (the hardening issue: 50 such
sockets stayed connected for minutes with megabytes each unsent in the kernel). Both hubs: the
embedded server, and a distributed hub fed through Redis as a worker would feed it.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.uri import parse_uri

from projections.patch import apply_changes, set_
from tests.conftest import RunningServer, start_server

pytestmark = pytest.mark.e2e

CENTER = "130706"  # a district of the sample tree
GRID = "130706001001001"
RAW_CONSOLES = 10


class RawConsole:
    """A console on a plain socket with a small receive buffer: handshake, hello, then no reads."""

    def __init__(self, url: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self.reset = False
        parts = urlsplit(url)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        self.sock.connect((parts.hostname, parts.port))
        self.sock.settimeout(10)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.handshake_exc is None and not self.protocol.events_received():
            self.protocol.receive_data(self.sock.recv(4096))
        assert self.protocol.handshake_exc is None, self.protocol.handshake_exc
        self.protocol.send_text(b'{"type":"hello"}')
        self._flush()

    def _flush(self) -> None:
        self.sock.sendall(b"".join(self.protocol.data_to_send()))

    def read_to_the_end(self, timeout: float = 30) -> int | None:
        """Read what the server sent until it closed the connection (EOF or reset); returns the
        code of its close frame, if one arrived. Fails when the connection stays open."""
        deadline = time.monotonic() + timeout
        code = None
        while True:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return code
            except TimeoutError:
                raise AssertionError("the server left a console connected") from None
            if not data:
                return code
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if getattr(event, "opcode", None) is Opcode.CLOSE:
                    code = self.protocol.close_rcvd.code if self.protocol.close_rcvd else None

    def reset_by_server(self) -> bool:
        """Whether the server reset the connection, seen without reading a byte."""
        self.reset = self.reset or (
            self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET)
        return self.reset

    def close(self) -> None:
        self.sock.close()


class GoodConsole:
    """A console that reads every frame and applies it, as docs/PROTOCOL.md says."""

    def __init__(self) -> None:
        self.view: dict[str, Any] = {}
        self.epoch = ""
        self.seq = -1
        self.closed: websockets.ConnectionClosed | None = None
        self.failure: Exception | None = None

    async def follow(self, url: str) -> None:
        try:
            async with websockets.connect(url, max_size=None) as ws:
                await ws.send('{"type":"hello"}')
                async for text in ws:
                    frame = orjson.loads(text)
                    if frame["type"] == "snapshot":
                        self.view, self.epoch, self.seq = frame["view"], frame["epoch"], frame["seq"]
                    elif frame["type"] == "delta":
                        assert (frame["epoch"], frame["seq"]) == (self.epoch, self.seq + 1)
                        apply_changes(self.view, frame["changes"])
                        self.seq = frame["seq"]
        except websockets.ConnectionClosed as exc:
            self.closed = exc
        except Exception as exc:  # an out-of-order delta: reported by caught_up()
            self.failure = exc


@dataclass
class Hub:
    server: RunningServer
    push: Callable[[int], Awaitable[None]]  # n more deltas to CENTER

    def closed(self, reason: str) -> float:
        """linkage_console_closed_total{reason=...} from GET /metrics."""
        text = httpx.get(f"{self.server.url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "linkage_console_closed_total" \
                        and sample.labels["reason"] == reason:
                    return sample.value
        raise AssertionError(f"no linkage_console_closed_total{{reason={reason!r}}} in /metrics")

    def consoles(self) -> int:
        return int(httpx.get(f"{self.server.url}/healthz", timeout=10).json()["consoles"])

    async def view(self) -> tuple[int, dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.server.url,
                                     headers=self.server.headers) as client:
            response = await client.get(f"/api/centers/{CENTER}/view")
        return int(response.headers["x-linkage-seq"]), response.json()


async def until(predicate: Callable[[], Any], what: str, timeout: float = 60) -> None:
    """Poll until predicate() holds: a liveness guard, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, f"{what} not reached within {timeout:g} s"
        await asyncio.sleep(0.1)


# -- the two hubs ------------------------------------------------------------------------------


def _embedded(tmp_path: Path, **settings: Any) -> Iterator[Hub]:
    server = start_server(tmp_path / "data", ws_rate=0.0, **settings)

    async def push(n: int) -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:
            for i in range(n):
                response = await client.post("/api/incidents", json={
                    "source": "grid_worker", "category": "garbage", "grid": GRID,
                    "description": f"garbage pile {i} " + "x" * 60})
                assert response.status_code == 201

    try:
        yield Hub(server, push)
    finally:
        server.stop()


def _redis_hub(tmp_path: Path, schema: str, redis_url: str, **settings: Any) -> Iterator[Hub]:
    """A distributed hub (`linkage serve --mode distributed`) in a thread; the test writes the
    center's deltas to Redis the way a worker does."""
    import uvicorn

    from infra.bootstrap import build_hub
    from infra.distributed.redis_fanout import RedisFanout
    from infra.runtime.server import server_config
    from infra.security.sealer import new_signing_key
    from infra.settings import Settings

    prefix = f"t{uuid.uuid4().hex[:8]}"
    seal_key = tmp_path / "seal.pem"  # a distributed hub takes its keys from settings
    seal_key.write_bytes(new_signing_key())
    config_settings = Settings().with_(
        store="postgres", postgres_schema=schema, redis_url=redis_url, redis_prefix=prefix,
        data_dir=tmp_path / "hub", ws_allow_missing_origin=True, resume_wait=0.3, ws_rate=0.0,
        ingest_process=False, jwt_secret=uuid.uuid4().hex * 2, seal_key_path=str(seal_key),
        **settings)
    hub = build_hub(config_settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(server_config(hub.app(), config_settings, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the hub did not start"
        time.sleep(0.02)
    assert hub.tokens is not None
    token = hub.tokens.issue("test-officer", "city_officer", hub.jurisdiction.root.id)
    running = RunningServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", tmp_path, port,
                            hub, server, thread, headers={"Authorization": f"Bearer {token}"},
                            token=token)
    view: dict[str, Any] = {"center": CENTER, "position": 0}
    seq = 0

    async def push(n: int) -> None:
        nonlocal seq
        fanout = RedisFanout(redis_url, prefix)
        try:
            for _ in range(n):
                seq += 1
                changes = [set_(["blob"], f"{seq:08d}" + "x" * 1000), set_(["position"], seq)]
                apply_changes(view, changes)
                await fanout.publish(CENTER, "e1", [(seq, changes)], view)
        finally:
            await fanout.close()

    try:
        # The center has a view in Redis before consoles connect (the test's loop is running).
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, push(1)).result()
        yield Hub(running, push)
    finally:
        running.stop()


@pytest.fixture(params=["embedded", "redis-hub"])
def hub_factory(request: pytest.FixtureRequest, tmp_path: Path
                ) -> Iterator[Callable[..., Hub]]:
    made: list[Iterator[Hub]] = []
    if request.param == "redis-hub":  # set up first, so torn down after the hub stopped
        schema, redis_url = request.getfixturevalue("pg_schema"), request.getfixturevalue("redis_url")

    def make(**settings: Any) -> Hub:
        if request.param == "embedded":
            hubs = _embedded(tmp_path, **settings)
        else:
            hubs = _redis_hub(tmp_path, schema, redis_url, **settings)
        made.append(hubs)
        return next(hubs)

    yield make
    for hubs in made:
        for _ in hubs:  # runs the teardown after the yield
            pass


@pytest.fixture
async def good_console() -> AsyncIterator[Callable[[Hub], Awaitable[GoodConsole]]]:
    tasks: list[asyncio.Task[None]] = []

    async def open_one(hub: Hub) -> GoodConsole:
        console = GoodConsole()
        tasks.append(asyncio.create_task(console.follow(hub.server.console_url(CENTER))))
        await until(lambda: console.seq >= 0, "the good console's snapshot")
        return console

    yield open_one
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def caught_up(hub: Hub, console: GoodConsole) -> None:
    """The good console ends equal to GET /api/centers/{id}/view."""
    seq, view = await hub.view()
    await until(lambda: console.seq >= seq or console.closed or console.failure,
                "the good console's last delta")
    assert console.closed is None and console.failure is None
    assert console.seq == seq and console.view == view


# -- the tests -------------------------------------------------------------------------------


async def test_consoles_that_never_read_are_closed_after_the_send_timeout(
    hub_factory: Callable[..., Hub],
    good_console: Callable[[Hub], Awaitable[GoodConsole]],
) -> None:
    # No keepalive pings here: only the send timeout may close the raw consoles.
    hub = hub_factory(ws_send_timeout=1.0, ws_send_buffer=4096, ws_ping_interval=0.0)
    good = await good_console(hub)
    raw = [RawConsole(hub.server.console_url(CENTER)) for _ in range(RAW_CONSOLES)]
    await until(lambda: hub.consoles() == RAW_CONSOLES + 1, "every console subscribed")
    pushed = 0
    while hub.closed("send_timeout") < RAW_CONSOLES:
        assert pushed < 2000, "the raw consoles were never closed"
        await hub.push(20)  # until their buffers are full and a send times out
        pushed += 20
    await until(lambda: hub.consoles() == 1, "only the good console left on the hub")
    assert hub.closed("send_timeout") == RAW_CONSOLES
    assert hub.closed("too_slow") == hub.closed("ping_timeout") == 0
    # Reset, not merely closed: the server keeps neither the socket nor the unsent megabytes.
    await until(lambda: all(console.reset_by_server() for console in raw), "every raw console reset")
    for console in raw:
        console.close()
    await hub.push(5)  # the good console keeps receiving
    await caught_up(hub, good)


async def test_consoles_that_do_not_answer_pings_are_closed(
    hub_factory: Callable[..., Hub],
    good_console: Callable[[Hub], Awaitable[GoodConsole]],
) -> None:
    hub = hub_factory(ws_ping_interval=0.5, ws_ping_timeout=0.5)
    good = await good_console(hub)
    raw = [RawConsole(hub.server.console_url(CENTER)) for _ in range(3)]
    await until(lambda: hub.closed("ping_timeout") == len(raw), "the silent consoles closed")
    for console in raw:
        assert await asyncio.to_thread(console.read_to_the_end) == 1011
        console.close()
    assert hub.consoles() == 1
    await hub.push(3)  # the good console answered every ping and keeps receiving
    await caught_up(hub, good)
    assert hub.closed("ping_timeout") == len(raw)
