"""Shared fixtures: real services (never mocks) and a real server on a free port.

Outside CI a test whose service is unreachable is skipped with the reason;
under CI=true it fails instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_DSN = os.environ.get("LINKAGE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LINKAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883


def unavailable(service: str, reason: str) -> None:
    """Skip (developer machine) or fail (CI) when a real service is unreachable."""
    message = f"{service} unreachable: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services must be up)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def no_feed_key_from_an_earlier_test() -> Iterator[None]:
    """A test that authenticates a feed in the test's own thread sets FEED_KEY there (a request
    sets it in its own context); the next test in that thread must not inherit it."""
    from command_center.revocation import FEED_KEY

    token = FEED_KEY.set(None)
    yield
    FEED_KEY.reset(token)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        unavailable("PostgreSQL", f"{POSTGRES_DSN}: {exc}")
    return POSTGRES_DSN


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield schema
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not port_open("127.0.0.1", 6379):
        unavailable("Redis", REDIS_URL)
    return REDIS_URL


@pytest.fixture(scope="session")
def mqtt_address() -> tuple[str, int]:
    if not port_open(MQTT_HOST, MQTT_PORT):
        unavailable("Mosquitto", f"{MQTT_HOST}:{MQTT_PORT}")
    return MQTT_HOST, MQTT_PORT


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka-compatible broker (Tansu, in memory) on a free loopback port."""
    from infra.distributed.tansu import TansuBroker

    try:
        broker = TansuBroker(log=tmp_path_factory.mktemp("tansu") / "broker.log").start()
    except Exception as exc:
        unavailable("Kafka (Tansu broker)", str(exc))
    yield broker.bootstrap
    broker.stop()


@dataclass
class RunningServer:
    """A real uvicorn server running the app in a background thread."""

    url: str
    ws_url: str
    data_dir: Path
    port: int
    embedded: object
    server: object
    thread: threading.Thread
    # Credentials every test request sends (an all-powerful officer unless a test asks otherwise).
    headers: dict[str, str] = field(default_factory=dict)
    feed_headers: dict[str, str] = field(default_factory=dict)
    token: str | None = None

    def console_url(self, center: str, token: str | None = None) -> str:
        """The console websocket URL for a center, with credentials."""
        url = f"{self.ws_url}/ws/console?center={center}"
        token = token or self.token
        return f"{url}&token={token}" if token else url

    def stop(self) -> None:
        self.server.should_exit = True  # type: ignore[attr-defined]
        self.thread.join(timeout=10)
        self.embedded.close()  # type: ignore[attr-defined]


def start_server(data_dir: Path, port: int | None = None, **settings: object) -> RunningServer:
    """Start the embedded command center on a free port; returns once it accepts requests."""
    import uvicorn

    from infra.bootstrap import build_embedded
    from infra.runtime.server import server_config
    from infra.settings import Settings

    # Bind the listening socket here and hand it to uvicorn: no window in which another
    # process can take a "free" port between choosing it and listening on it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port or 0))
    sock.listen(128)
    sock.set_inheritable(True)
    port = int(sock.getsockname()[1])
    # Test clients (httpx, websockets) send no Origin header; browsers always do. The production
    # default refuses a missing Origin; tests/e2e/test_security.py checks it with this set False.
    settings.setdefault("ws_allow_missing_origin", True)
    # In-process ingest unless a test asks for the writer process (tests/e2e/test_ingest_writer.py
    # and the ingest tests run both): spawning one per server would double the suite's time.
    settings.setdefault("ingest_process", False)
    # Likewise the runner, the sealer and the time-travel snapshots run in this process unless a
    # test asks for their processes (tests/e2e/test_background_processes.py; ServerProcess's
    # `linkage serve` runs them).
    settings.setdefault("seal_process", False)
    settings.setdefault("snapshot_process", False)
    settings.setdefault("runner_process", False)
    # Every test client is 127.0.0.1, and the security tests send many bad credentials on purpose:
    # a generous failure budget (tests/e2e/test_auth_flood.py checks the limit itself).
    settings.setdefault("auth_fail_burst", 100_000)
    config_settings = Settings().with_(data_dir=data_dir, host="127.0.0.1", port=port,
                                       resume_wait=0.3, **settings)
    embedded = build_embedded(config_settings)
    config = server_config(embedded.app(), config_settings, host="127.0.0.1", port=port,
                           log_level="warning")
    server = uvicorn.Server(config)

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    # Credentials: a city duty officer of the root center (allowed everything in the tree,
    # and not an admin, so its requests add no audit records) and a feed API key.
    root = embedded.jurisdiction.root.id
    token = embedded.tokens.issue("test-officer", "city_officer", root)
    _key_id, feed_key = embedded.keys.issue("test-feed")
    return RunningServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", data_dir, port,
                         embedded, server, thread,
                         headers={"Authorization": f"Bearer {token}"},
                         feed_headers={"X-API-Key": feed_key}, token=token)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Modules marked ingest_modes run each test that uses `server` twice: alerts stored in the
    # server's own process, and through the ingest writer process `linkage serve` runs.
    if "server" in metafunc.fixturenames and metafunc.definition.get_closest_marker("ingest_modes"):
        metafunc.parametrize("server", ["inline", "writer"], indirect=True,
                             ids=["inline", "writer-process"])


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    mode = getattr(request, "param", "inline")
    running = start_server(tmp_path / "data", ingest_process=mode == "writer")
    yield running
    running.stop()


@dataclass
class ServerProcess:
    """`linkage serve` as a real child process, for kill -9 tests."""

    url: str
    ws_url: str
    port: int
    process: object
    headers: dict[str, str] = field(default_factory=dict)
    token: str | None = None

    def console_url(self, center: str) -> str:
        url = f"{self.ws_url}/ws/console?center={center}"
        return f"{url}&token={self.token}" if self.token else url

    def kill(self) -> None:
        import signal

        self.process.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
        self.process.wait(timeout=10)  # type: ignore[attr-defined]


def _officer_token(data_dir: Path) -> str:
    """A city duty officer's token signed with the server's local secret (under data_dir)."""
    from infra.loaders.jurisdiction import load_jurisdiction
    from infra.security.tokens import Tokens
    from infra.settings import Settings

    settings = Settings().with_(data_dir=data_dir)
    root = load_jurisdiction(settings.jurisdiction).root.id
    return Tokens(settings).issue("test-officer", "city_officer", root)


def spawn_server(data_dir: Path, port: int | None = None, env: dict[str, str] | None = None,
                 ) -> ServerProcess:
    """Run `linkage serve` in a child process and wait until /healthz answers."""
    import subprocess
    import sys

    import httpx

    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", str(port), "--data-dir",
         str(data_dir)],
        env={**os.environ, "LINKAGE_RESUME_WAIT": "0.3",
             "LINKAGE_WS_ALLOW_MISSING_ORIGIN": "true", **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"linkage serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                token = _officer_token(data_dir)
                return ServerProcess(url, f"ws://127.0.0.1:{port}", port, process,
                                     headers={"Authorization": f"Bearer {token}"}, token=token)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("linkage serve did not answer /healthz within 30 s")
