"""Issue #14 on PostgreSQL (distributed mode's store): two SLA watchers in two services on one
event store escalate each rung once; the step-4 ledger folds orders and the assessment from the
PostgreSQL log; a read model made before the deadline index gains its columns (SQLite too)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from command_center.ledger import Ledger
from domain.application import IncidentService
from domain.order_service import SupervisionOrders
from infra.bootstrap import ledger_reader, notification_reader
from infra.loaders.sla_policy import load_policy
from infra.runner.embedded import EmbeddedRunner
from infra.runner.sla_watcher import SlaWatcher
from infra.settings import Settings
from infra.store import incident_rows
from infra.store.incident_rows import PostgresIncidentRows
from infra.store.view_store import PostgresViewStore, SQLiteViewStore
from projections.assessment import DEFAULT_WEIGHTS, rows

CENTERS = ["town", "district", "city"]
CHAINS = {"town": CENTERS, "district": CENTERS[1:], "city": CENTERS[2:]}
OFFICER = {"user": "officer", "role": "admin", "center": None}


def service(dsn: str, schema: str, now: list[datetime]) -> IncidentService:
    settings = Settings().with_(store="postgres", postgres_dsn=dsn, postgres_schema=schema)
    return IncidentService(lambda grid: CENTERS, env=settings.eventsourcing_env(),
                           policy=load_policy(), clock=lambda: now[0])


async def test_two_watchers_on_postgresql_escalate_each_rung_once(
    postgres_dsn: str, pg_schema: str,
) -> None:
    now = [datetime.now(UTC)]
    first, second = service(postgres_dsn, pg_schema, now), service(postgres_dsn, pg_schema, now)
    runner = EmbeddedRunner(notification_reader(first),
                            PostgresViewStore(postgres_dsn, schema=pg_schema), CENTERS)
    cases = [str(first.report(actor=OFFICER, grid="g", source="hotline", category="pothole",
                              severity="routine", description=f"case {n}").id)
             for n in range(8)]
    runner.catch_up()
    watchers = [SlaWatcher(s, runner.store, "city", clock=lambda: now[0])
                for s in (first, second, service(postgres_dsn, pg_schema, now))]
    now[0] += timedelta(minutes=30)  # the shipped policy: 30 minutes to accept
    assert sum(await asyncio.gather(*(w.sweep() for w in watchers))) == 8
    assert sum(await asyncio.gather(*(w.sweep() for w in watchers))) == 0  # read model lags
    runner.catch_up()
    assert sum(await asyncio.gather(*(w.sweep() for w in watchers))) == 0  # next rung not due
    now[0] += timedelta(hours=1)
    assert sum(await asyncio.gather(*(w.sweep() for w in watchers))) == 8
    for case in cases:
        levels = [e["data"]["level"] for e in first.timeline(case) if e["type"] == "Escalated"]
        assert levels == ["township", "district"]


def test_the_ledger_folds_orders_and_the_assessment_from_the_postgresql_log(
    postgres_dsn: str, pg_schema: str,
) -> None:
    now = [datetime.now(UTC)]
    app = service(postgres_dsn, pg_schema, now)
    orders = SupervisionOrders(app, lambda c: CHAINS[c])
    order = orders.issue(actor=OFFICER, issuer="district", addressee="town",
                         deadline=(now[0] + timedelta(hours=2)).isoformat(), note="n")
    incident = app.report(actor=OFFICER, grid="g", source="hotline", category="pothole",
                          severity="routine", description="d")
    app.act(str(incident.id), "accept", actor=OFFICER)
    orders.fulfil(str(order.id), actor=OFFICER, what="done")
    ledger = Ledger(ledger_reader(app))
    assert ledger.catch_up() == 4
    assert ledger.orders.for_unit("town", 10) == []
    today = datetime.fromisoformat(incident.as_dict()["created_at"]).astimezone(
        ledger.assessment.offset).date()
    (row,) = rows(ledger.assessment, [("town", "township")], "day", today, today, DEFAULT_WEIGHTS)
    assert (row["intake"], row["accept_on_time"], row["orders_received"],
            row["orders_met_on_time"]) == (1, 1.0, 1, 1.0)
    assert ledger.catch_up() == 0
    assert date.fromisoformat(row["start"]) == today


OLD_COLUMNS = [c for c in incident_rows.COLUMNS if c not in incident_rows.ADDED]


def old_table() -> str:
    cols = ", ".join(f"{c} {'BIGINT' if c in incident_rows.INTEGERS else 'TEXT'}"
                     + (" PRIMARY KEY" if c == "id" else "") for c in OLD_COLUMNS)
    return f"CREATE TABLE linkage_incidents ({cols})"


def test_a_read_model_from_before_the_deadline_index_gains_its_columns(
    tmp_path: Path, postgres_dsn: str, pg_schema: str,
) -> None:
    path = tmp_path / "views.db"
    with sqlite3.connect(path) as conn:
        conn.execute(old_table())
        conn.execute("INSERT INTO linkage_incidents (id, status, version) VALUES ('a', 'reported', 1)")
    store = SQLiteViewStore(path)
    assert store.due("9999", 10) == []  # the old row has no escalate_at: never due
    with sqlite3.connect(path) as conn:
        names = {row[1] for row in conn.execute("PRAGMA table_info(linkage_incidents)")}
    assert set(incident_rows.ADDED) <= names

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {pg_schema}")
        conn.execute(old_table())
    pg = PostgresIncidentRows(postgres_dsn, pg_schema)
    assert pg.due("9999", 10) == []
    pg.close()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        found = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND "
            "table_name = 'linkage_incidents'", (pg_schema,))}
    assert set(incident_rows.ADDED) <= found
