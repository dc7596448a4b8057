"""Distributed processes facing an unreachable service: a clear error and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from infra.security.sealer import new_signing_key
from tests.conftest import free_port
from tests.integration.distributed import LINKAGE

pytestmark = pytest.mark.integration


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "LINKAGE_STORE": "postgres", "LINKAGE_RELAY_METRICS_PORT": "0",
            "LINKAGE_CONNECT_TIMEOUT": "3", **env}
    # The timeout only guards against a hang, which is itself the failure this test looks for.
    return subprocess.run([LINKAGE, *args], env=full, capture_output=True, text=True, timeout=60)


def test_relay_names_postgresql_and_its_address_when_it_is_unreachable() -> None:
    port = free_port()
    result = _run(["relay"], LINKAGE_POSTGRES_DSN=f"postgresql://postgres@127.0.0.1:{port}/test")
    assert result.returncode != 0
    assert "PostgreSQL" in result.stderr and f"127.0.0.1:{port}" in result.stderr


def test_relay_names_kafka_and_its_address_when_it_is_unreachable(postgres_dsn: str) -> None:
    port = free_port()
    result = _run(["relay"], LINKAGE_POSTGRES_DSN=postgres_dsn,
                  LINKAGE_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}")
    assert result.returncode != 0
    assert "Kafka" in result.stderr and f"127.0.0.1:{port}" in result.stderr


def test_worker_names_kafka_when_it_is_unreachable() -> None:
    port = free_port()
    result = _run(["worker"], LINKAGE_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}")
    assert result.returncode != 0
    assert "Kafka" in result.stderr and f"127.0.0.1:{port}" in result.stderr


def test_hub_names_redis_and_its_address_when_it_is_unreachable(postgres_dsn: str,
                                                                tmp_path: Path) -> None:
    port = free_port()
    seal_key = tmp_path / "seal.pem"
    seal_key.write_bytes(new_signing_key())  # the keys are checked first: give it them
    result = _run(["serve", "--mode", "distributed", "--port", str(free_port())],
                  LINKAGE_POSTGRES_DSN=postgres_dsn, LINKAGE_REDIS_URL=f"redis://127.0.0.1:{port}/0",
                  LINKAGE_JWT_SECRET="s" * 40, LINKAGE_SEAL_KEY=str(seal_key))
    assert result.returncode != 0
    assert "Redis" in result.stderr and f"127.0.0.1:{port}" in result.stderr


def test_worker_names_redis_when_it_is_unreachable(kafka_bootstrap: str) -> None:
    port = free_port()
    result = _run(["worker"], LINKAGE_KAFKA_BOOTSTRAP=kafka_bootstrap,
                  LINKAGE_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    assert result.returncode != 0
    assert "Redis" in result.stderr and f"127.0.0.1:{port}" in result.stderr
