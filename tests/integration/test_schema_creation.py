"""Processes that start together on a fresh PostgreSQL schema create its tables in turn
(infra/store/ddl_lock.py), and a configured schema that does not exist is created.

What raced: the relay and two hubs (and the worker, for the read model), started at the same
moment on a new schema, each running eventsourcing's CREATE TYPE / CREATE TABLE / CREATE OR
REPLACE FUNCTION and our own CREATEs; PostgreSQL failed one of them ("tuple concurrently
updated", duplicate pg_type rows).
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infra.bootstrap import build_security, build_service, build_view_store
from infra.distributed.relay import RelayPosition
from infra.loaders.jurisdiction import DEFAULT_JURISDICTION, load_jurisdiction
from infra.outbound.wiring import outbound_store
from infra.settings import Settings
from infra.store.incident_rows import PostgresIncidentRows

pytestmark = pytest.mark.integration

JURISDICTION = load_jurisdiction(DEFAULT_JURISDICTION)
# Every table a relay, a hub or a worker creates on PostgreSQL.
TABLES = {"linkage_events", "linkage_relay_position", "linkage_seal_chain",
          "linkage_seal_checkpoints", "linkage_seal_tracking", "linkage_api_keys",
          "linkage_incidents", "linkage_view_meta", "linkage_views", "linkage_deltas",
          "linkage_outbound_subscriptions", "linkage_outbound_deliveries",
          "linkage_outbound_position", "linkage_outbound_windows"}


def settings_for(dsn: str, schema: str, data_dir: Path) -> Settings:
    return Settings(store="postgres", postgres_dsn=dsn, postgres_schema=schema,
                    data_dir=data_dir, jwt_secret="s" * 40)


def start_tables(role: str, settings: Settings) -> None:
    """What a process of that role creates on start, as bootstrap builds it."""
    if role == "worker":  # the read model only: the worker has no event store
        PostgresIncidentRows(settings.postgres_dsn, settings.postgres_schema).close()
        return
    service = build_service(settings, JURISDICTION)
    try:
        if role == "relay":
            RelayPosition(settings.postgres_dsn, settings.relay_name,
                          settings.postgres_schema).close()
        else:
            build_security(settings, JURISDICTION, service)
            PostgresIncidentRows(settings.postgres_dsn, settings.postgres_schema).close()
            build_view_store(settings).close()  # (embedded mode on PostgreSQL)
            outbound_store(settings)  # the deliverer's tables (infra/outbound/store.py)
    finally:
        service.close()


def _child(role: str, settings: Settings, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(30)  # every process starts its CREATEs at the same moment
        start_tables(role, settings)
        results.put((role, ""))
    except BaseException as exc:
        results.put((role, f"{type(exc).__name__}: {exc}"))


def tables(dsn: str, schema: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = %s", (schema,)).fetchall()
    return {row[0] for row in rows}


@pytest.fixture
def fresh_schemas(postgres_dsn: str) -> Iterator[list[str]]:
    """Names of schemas that do not exist yet; whatever got created is dropped afterwards."""
    names: list[str] = []
    yield names
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.mark.slow
def test_fifty_concurrent_starts_on_fresh_schemas_all_succeed(
        postgres_dsn: str, fresh_schemas: list[str], tmp_path: Path) -> None:
    # Forked children: each start costs its CREATEs, not a Python start-up (50 fit in ~1 min).
    context = multiprocessing.get_context("fork")
    for attempt in range(50):
        schema = f"race_{uuid.uuid4().hex[:10]}"
        fresh_schemas.append(schema)
        roles = ("relay", "hub1", "hub2", "worker")
        barrier, results = context.Barrier(len(roles)), context.Queue()
        children = [context.Process(target=_child, args=(
            role, settings_for(postgres_dsn, schema, tmp_path / schema / role), barrier,
            results)) for role in roles]
        for child in children:
            child.start()
        outcomes = [results.get(timeout=120) for _ in children]
        for child in children:
            child.join(30)
        failures = [f"{role}: {error}" for role, error in outcomes if error]
        assert not failures, f"start {attempt} of 50 failed:\n" + "\n".join(failures)
        assert tables(postgres_dsn, schema) >= TABLES


def test_a_configured_schema_that_does_not_exist_is_created(
        postgres_dsn: str, fresh_schemas: list[str], tmp_path: Path) -> None:
    schema = f"new_{uuid.uuid4().hex[:10]}"
    fresh_schemas.append(schema)
    for role in ("relay", "hub", "worker"):
        start_tables(role, settings_for(postgres_dsn, schema, tmp_path / role))
    assert tables(postgres_dsn, schema) >= TABLES
