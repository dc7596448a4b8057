"""`linkage up` supervises its children: a killed relay comes back, the hubs never stop answering.

Real processes on real services: a Tansu broker started by `linkage up` itself, PostgreSQL (a
fresh schema) and Redis (a fresh key prefix).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench._stack import LINKAGE, wait_until
from infra.security.tokens import Tokens
from infra.settings import Settings
from tests.conftest import free_port

pytestmark = pytest.mark.integration
CITY = "130700"


def children(pid: int) -> dict[str, int]:
    """The supervised children of `linkage up` by role (broker, relay, worker, hub1, hub2)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid != pid:
            continue
        args = [a.decode() for a in argv if a]
        if "broker" in args:
            found["broker"] = int(entry.name)
        elif "relay" in args:
            found["relay"] = int(entry.name)
        elif "worker" in args:
            found["worker"] = int(entry.name)
        elif "serve" in args:
            found["hub1" if "--demo" in args or "hub1" not in found else "hub2"] = int(entry.name)
    return found


class Up:
    def __init__(self, root: Path, dsn: str, schema: str, redis_url: str) -> None:
        self.port = free_port()
        while not port_free(self.port + 1):  # the second hub listens on port + 1
            self.port = free_port()
        self.secret = uuid.uuid4().hex * 2
        tag = uuid.uuid4().hex[:8]
        self.env = {
            **os.environ,
            "LINKAGE_POSTGRES_DSN": dsn,
            "LINKAGE_POSTGRES_SCHEMA": schema,
            "LINKAGE_REDIS_URL": redis_url,
            "LINKAGE_REDIS_PREFIX": f"up{tag}",
            "LINKAGE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "LINKAGE_KAFKA_TOPIC": f"events-{tag}",
            "LINKAGE_WORKER_ID": f"worker-{tag}",
            "LINKAGE_WORKER_SESSION_TIMEOUT": "6",
            "LINKAGE_RELAY_METRICS_PORT": "0",
            "LINKAGE_DATA_DIR": str(root / "var"),
            "LINKAGE_JWT_SECRET": self.secret,
            "LINKAGE_WS_ALLOW_MISSING_ORIGIN": "true",
        }
        self.log = root / "up.log"
        self.process = subprocess.Popen(
            [LINKAGE, "up", "--port", str(self.port), "--demo-rate", "0"], env=self.env,
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        token = Tokens(Settings(jwt_secret=self.secret, data_dir=root / "var")).issue(
            "officer", "city_officer", CITY)
        self.headers = {"Authorization": f"Bearer {token}"}

    def url(self, hub: int) -> str:
        return f"http://127.0.0.1:{self.port + hub}"

    def healthy(self, hub: int) -> bool:
        try:
            return httpx.get(self.url(hub) + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                return self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait(10)


@pytest.fixture
def up(tmp_path: Path, postgres_dsn: str, pg_schema: str, redis_url: str) -> Iterator[Up]:
    stack = Up(tmp_path, postgres_dsn, pg_schema, redis_url)
    try:
        yield stack
    finally:
        stack.stop()
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(stack.process.pid, signal.SIGKILL)


@pytest.mark.slow  # tens of seconds: CI runs it, a plain `make test` does not
def test_a_killed_relay_is_restarted_and_the_hubs_keep_answering(up: Up) -> None:
    wait_until(lambda: up.healthy(0) and up.healthy(1), 120, what="both hubs answering")
    wait_until(lambda: {"relay", "worker"} <= children(up.process.pid).keys(), 60,
               what="relay and worker running")
    before = children(up.process.pid)

    os.kill(before["relay"], signal.SIGKILL)
    unanswered = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # The healthy hubs must keep answering the whole time (never stopped with the relay).
        unanswered += not up.healthy(0)
        unanswered += not up.healthy(1)
        relay = children(up.process.pid).get("relay")
        if relay is not None and relay != before["relay"]:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"relay not restarted; output:\n{up.output()[-3000:]}")
    assert unanswered == 0
    assert "relay" in up.output() and "restarting in 1 s" in up.output()
    after = children(up.process.pid)
    for name in ("worker", "hub1", "hub2"):
        assert after.get(name) == before.get(name), f"{name} was restarted too"

    # The restarted relay carries new reports through the worker to the other hub.
    before_count = reported_count(up, 1)
    response = httpx.post(up.url(0) + "/api/incidents", headers=up.headers, timeout=10, json={
        "source": "hotline", "category": "noise", "severity": "routine",
        "grid": _a_grid(up), "description": "after the relay was killed"})
    assert response.status_code == 201, response.text
    wait_until(lambda: reported_count(up, 1) == before_count + 1, 120,
               what="the new report counted on the second hub")


def test_ctrl_c_stops_every_child(up: Up) -> None:
    wait_until(lambda: len(children(up.process.pid)) == 5, 120, what="five children")
    pids = list(children(up.process.pid).values())
    assert up.stop() == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text(
        ).rsplit(")", 1)[1].split()[0], f"child {pid} still running"


def reported_count(up: Up, hub: int) -> int:
    view = httpx.get(up.url(hub) + f"/api/centers/{CITY}/view", headers=up.headers,
                     timeout=10).json()
    return int(view["counts"]["reported"])


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _a_grid(up: Up) -> str:
    from infra.loaders.jurisdiction import DEFAULT_JURISDICTION, load_jurisdiction

    return next(iter(load_jurisdiction(DEFAULT_JURISDICTION).grids())).id
