"""Embedded mode on PostgreSQL keeps its views beside its events, in LINKAGE_POSTGRES_SCHEMA:
two servers on two schemas of one database do not share a projection position."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server
from tests.e2e.alerting import CENTERS, alert, post_alerts

pytestmark = pytest.mark.integration


def city_raised(running: object) -> int:
    view = httpx.get(f"{running.url}/api/centers/{CENTERS[2]}/view",  # type: ignore[attr-defined]
                     headers=running.headers).json()  # type: ignore[attr-defined]
    return int(view["alert_counts"]["raised"])


def wait_raised(running: object, count: int) -> None:
    deadline = time.monotonic() + 15
    while city_raised(running) != count:
        assert time.monotonic() < deadline, f"city view shows {city_raised(running)}, not {count}"
        time.sleep(0.05)


def test_two_schemas_keep_their_own_views(tmp_path: Path, postgres_dsn: str,
                                          pg_schema: str) -> None:
    import psycopg

    other = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {other}")
    try:
        first = start_server(tmp_path / "a", store="postgres", postgres_dsn=postgres_dsn,
                             postgres_schema=other)
        try:
            assert post_alerts(first, [alert(f"a{i}") for i in range(7)]).status_code == 200
            wait_raised(first, 7)
        finally:
            first.stop()
        second = start_server(tmp_path / "b", store="postgres", postgres_dsn=postgres_dsn,
                              postgres_schema=pg_schema)
        try:
            assert city_raised(second) == 0  # a fresh schema: nothing folded yet
            assert post_alerts(second, [alert(f"b{i}") for i in range(3)]).status_code == 200
            wait_raised(second, 3)
        finally:
            second.stop()
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {other} CASCADE")
