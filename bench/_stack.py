"""A distributed deployment on this machine, for the benchmark and the tests: real processes
(relay, worker, hubs) on real services.

Each stack gets its own PostgreSQL schema, Kafka topic, faust app id and Redis prefix,
so stacks never see each other's data. Every process is stopped in `close()`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from infra.bootstrap import build_service, notification_reader
from infra.distributed.redis_client import is_cluster, node_url
from infra.loaders.jurisdiction import DEFAULT_JURISDICTION, load_jurisdiction
from infra.runner.embedded import EmbeddedRunner
from infra.security.sealer import new_signing_key
from infra.security.secrets_file import read_or_create
from infra.security.tokens import Tokens
from infra.settings import Settings
from infra.store.view_store import MemoryViewStore
from projections.center_view import new_view
from projections.patch import View

LINKAGE = str(Path(sys.executable).parent / "linkage")


def wait_until(predicate: Callable[[], Any], timeout: float = 90.0, every: float = 0.2,
               what: str = "condition") -> Any:
    """Poll until predicate() is truthy; a liveness guard, not a performance assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g}s")
        time.sleep(every)


def multi_district_jurisdiction(path: Path) -> Path:
    """The sample tree plus grids in two more districts: events route to several districts."""
    data = orjson.loads(DEFAULT_JURISDICTION.read_bytes())
    for d, (district, lon) in enumerate((("130702", 114.9), ("130703", 114.8))):
        town, community = f"{district}001", f"{district}001001"
        data["features"].append(_feature(town, "township", district))
        data["features"].append(_feature(community, "community", town))
        for g in range(5):
            x, y = lon + g * 0.01, 40.0 + d * 0.1
            square = [[[x, y], [x + 0.009, y], [x + 0.009, y + 0.009], [x, y + 0.009], [x, y]]]
            data["features"].append(
                _feature(f"{community}{g:03d}", "grid", community,
                         {"type": "Polygon", "coordinates": square}))
    path.write_bytes(orjson.dumps(data))
    return path


def _feature(unit: str, level: str, parent: str, geometry: Any = None) -> dict[str, Any]:
    return {"type": "Feature", "id": unit, "geometry": geometry,
            "properties": {"id": unit, "name": unit, "name_en": unit, "level": level,
                           "parent": parent}}


@dataclass
class Stack:
    """One distributed deployment: env, processes, and ways to read its state."""

    root: Path
    postgres_dsn: str
    schema: str
    redis_url: str
    kafka_bootstrap: str
    partitions: int = 2
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        # Every process shares the JWT secret and the seal key (distributed mode requires
        # them configured); test clients send no Origin.
        secret = uuid.uuid4().hex + uuid.uuid4().hex
        self.root.mkdir(parents=True, exist_ok=True)
        seal_key = self.root / "seal_ed25519.pem"
        read_or_create(seal_key, new_signing_key)
        jurisdiction = multi_district_jurisdiction(self.root / "jurisdiction.geojson")
        self.env = {
            **os.environ,
            "LINKAGE_STORE": "postgres",
            "LINKAGE_POSTGRES_DSN": self.postgres_dsn,
            "LINKAGE_POSTGRES_SCHEMA": self.schema,
            "LINKAGE_REDIS_URL": self.redis_url,
            "LINKAGE_REDIS_PREFIX": f"t{tag}",
            "LINKAGE_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "LINKAGE_KAFKA_TOPIC": f"events-{tag}",
            "LINKAGE_KAFKA_PARTITIONS": str(self.partitions),
            "LINKAGE_KAFKA_IDEMPOTENCE": "false",  # Tansu 0.6 (memory) lacks InitProducerId v0
            "LINKAGE_WORKER_ID": f"worker-{tag}",
            "LINKAGE_WORKER_SESSION_TIMEOUT": "6",
            "LINKAGE_RELAY_METRICS_PORT": "0",
            "LINKAGE_DATA_DIR": str(self.root / "var"),
            "LINKAGE_JURISDICTION": str(jurisdiction),
            "LINKAGE_RESUME_WAIT": "0.3",
            "LINKAGE_JWT_SECRET": secret,
            "LINKAGE_SEAL_KEY": str(seal_key),
            "LINKAGE_WS_ALLOW_MISSING_ORIGIN": "true",
        }
        self.settings = Settings(
            store="postgres", postgres_dsn=self.postgres_dsn, postgres_schema=self.schema,
            jurisdiction=jurisdiction, data_dir=self.root / "var", jwt_secret=secret,
            seal_key_path=str(seal_key),
        )
        self.jurisdiction = load_jurisdiction(jurisdiction)
        self.service = build_service(self.settings, self.jurisdiction)
        self.centers = [unit.id for unit in self.jurisdiction.centers()]
        self.prefix = self.env["LINKAGE_REDIS_PREFIX"]
        self.token = Tokens(self.settings).issue("test-officer", "city_officer",
                                                 self.jurisdiction.root.id)

    # -- processes ---------------------------------------------------------

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the process owns it
        process = subprocess.Popen([LINKAGE, *args], env={**self.env, **env}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)
        self.service.close()
        client = self._redis()
        for key in list(client.scan_iter(f"{self.prefix}:*")):
            client.delete(key)  # one by one: a cluster refuses keys of several slots at once
        client.close()

    def _redis(self) -> Any:
        """A client of `redis_url`: one server, or a cluster (`redis+cluster://`)."""
        import redis

        if is_cluster(self.redis_url):
            return redis.RedisCluster.from_url(node_url(self.redis_url))
        return redis.Redis.from_url(self.redis_url)

    # -- state -------------------------------------------------------------

    def replay(self) -> tuple[dict[str, View], dict[str, int]]:
        """Views (and seqs) from a replay of the whole log by the embedded runner."""
        return replay_views(self.service, self.centers)

    def redis_state(self) -> dict[str, tuple[str, int, View]]:
        """(epoch, seq, view) of every center as a hub reads it from Redis."""
        return redis_views(self.redis_url, self.centers, self.prefix)


def replay_views(service: Any, centers: list[str]) -> tuple[dict[str, View], dict[str, int]]:
    """Views (and seqs) of `centers` from a replay of the service's whole log by the embedded
    runner."""
    runner = EmbeddedRunner(notification_reader(service), MemoryViewStore(), centers)
    runner.catch_up()
    views = {c: runner.views.get(c, new_view(c)) for c in centers}
    return views, {c: runner.seqs.get(c, 0) for c in centers}


def redis_views(redis_url: str, centers: list[str],
                prefix: str) -> dict[str, tuple[str, int, View]]:
    """(epoch, seq, view) of every center as a hub reads it from Redis."""
    import asyncio

    from infra.distributed.redis_fanout import RedisViewSource

    async def read() -> dict[str, tuple[str, int, View]]:
        source = RedisViewSource(redis_url, centers, prefix)
        try:
            return {center: await source.snapshot(center) for center in centers}
        finally:
            await source.close()

    return asyncio.run(read())
