"""Distributed mode: a feed key revoked with the CLI closes its feed sockets on every hub
(issue #11 row 3). Two real `linkage serve --mode distributed` processes on PostgreSQL and Redis."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from infra.security.api_keys import ApiKeys
from tests.conftest import free_port
from tests.e2e.alerting import alert
from tests.integration.distributed import LINKAGE, Stack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path, postgres_dsn: str, pg_schema: str, redis_url: str) -> Iterator[Stack]:
    # Hubs alone need no broker (no relay or worker runs here): the address is never dialled.
    running = Stack(tmp_path, postgres_dsn, pg_schema, redis_url, kafka_bootstrap="127.0.0.1:9")
    yield running
    running.close()


def hub(stack: Stack, name: str) -> str:
    port = free_port()
    stack.start(name, "serve", "--mode", "distributed", "--port", str(port))
    wait_until(lambda: "Uvicorn running" in stack.log(name) or
               stack.processes[name].poll() is not None, 60, what=f"{name} listening")
    assert stack.processes[name].poll() is None, stack.log(name)
    return f"ws://127.0.0.1:{port}/ws/feed"


def test_a_key_revoked_with_the_cli_closes_its_feed_sockets_on_every_hub(stack: Stack) -> None:
    urls = [hub(stack, "hub1"), hub(stack, "hub2")]
    key_id, key = ApiKeys.for_settings(stack.settings).issue("gate-everywhere")
    with ExitStack() as opened:
        sockets = [opened.enter_context(connect(url, additional_headers={"X-API-Key": key},
                                                open_timeout=10)) for url in urls]
        for n, ws in enumerate(sockets):
            ws.send(orjson.dumps({"ref": n, "alert": alert(f"hub-{n}")}).decode())
            assert orjson.loads(ws.recv(timeout=20))["type"] == "ack"
        revoke = subprocess.run([LINKAGE, "feed-key", "revoke", key_id, "--store", "postgres"],
                                env=stack.env, capture_output=True, text=True, timeout=60)
        assert revoke.returncode == 0, revoke.stdout + revoke.stderr
        deadline = time.monotonic() + 15  # a liveness guard; each hub polls every second
        for ws in sockets:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert "revoked" in closed.value.rcvd.reason
