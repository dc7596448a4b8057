"""The per-incident read model in SQL: table `linkage_incidents`, one row per incident.

Rows are the incident records of projections/cases.py, upserted by whoever folds the events
(the embedded runner, in its view-store transaction; the worker, in distributed mode), never
going back a version, so a redelivery or a replay leaves them as they are. The SQL here runs on
SQLite and PostgreSQL; `MemoryRows` gives the same answers for the memory view store.
`PostgresIncidentRows` is the distributed adapter: the worker writes, the hubs read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from command_center.incident_query import IncidentQuery
from infra.store.ddl_lock import ddl_lock
from projections.cases import TERMINAL, WORKING, Case, utc_text

log = logging.getLogger(__name__)

# The record's own fields, then what queries filter on: the centers from the root, due in UTC
FIELDS = ("id", "grid", "status", "severity", "category", "source", "assignee", "due",
          "reported_at", "updated_at", "summary", "version", "escalations", "escalated_to",
          "supervised_by", "urgency", "step", "step_due", "escalate_at")
COLUMNS = (*FIELDS, "centers", "center1", "center2", "center3", "due_utc", "escalate_at_utc")
# Columns added after the table was first shipped (issue #14: the deadline index).
ADDED = ("step", "step_due", "escalate_at", "escalate_at_utc")
INTEGERS = frozenset({"version", "escalations"})
MAX_DEPTH = 3
_TERMINAL = tuple(sorted(TERMINAL))
_WORKING = tuple(sorted(WORKING))


def schema() -> list[str]:
    cols = ", ".join(f"{c} {'BIGINT' if c in INTEGERS else 'TEXT'}"
                     + (" PRIMARY KEY" if c == "id" else "") for c in COLUMNS)
    return [
        f"CREATE TABLE IF NOT EXISTS linkage_incidents ({cols})",
        *(f"CREATE INDEX IF NOT EXISTS linkage_incidents_c{d} ON linkage_incidents "
          f"(center{d}, urgency, id)" for d in range(1, MAX_DEPTH + 1)),
        "CREATE INDEX IF NOT EXISTS linkage_incidents_due ON linkage_incidents (due_utc)",
    ]


def add_deadline_index(execute: Callable[[str], Any]) -> None:
    """Add the deadline index's columns to a table made before them, then its index (the
    watcher reads only the rows whose next escalation is due, in due order)."""
    for column in ADDED:
        try:
            execute(f"SELECT {column} FROM linkage_incidents WHERE 1 = 0")
        except Exception:  # no such column: a table from before the deadline index
            execute(f"ALTER TABLE linkage_incidents ADD COLUMN {column} TEXT")
    execute("CREATE INDEX IF NOT EXISTS linkage_incidents_escalate ON linkage_incidents "
            "(escalate_at_utc, id)")


def to_row(case: Case) -> tuple[Any, ...]:
    from_root = list(reversed(case.get("centers") or []))[:MAX_DEPTH]
    from_root += [None] * (MAX_DEPTH - len(from_root))
    return (*(case.get(f) for f in FIELDS), orjson.dumps(case.get("centers") or []).decode(),
            *from_root, utc_text(case.get("due")), utc_text(case.get("escalate_at")))


def to_case(row: tuple[Any, ...]) -> Case:
    case = dict(zip(FIELDS, row, strict=False))
    for name in INTEGERS:
        case[name] = int(case[name] or 0)
    case["centers"] = orjson.loads(row[len(FIELDS)])
    return case


def upsert_sql(ph: str = "?") -> str:
    names = ", ".join(COLUMNS)
    marks = ", ".join([ph] * len(COLUMNS))
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "id")
    return (f"INSERT INTO linkage_incidents ({names}) VALUES ({marks}) ON CONFLICT (id) DO "
            f"UPDATE SET {updates} WHERE excluded.version > linkage_incidents.version")


def latest(cases: Iterable[Case]) -> list[tuple[Any, ...]]:
    """One row per incident (its highest version), in id order (a fixed lock order)."""
    best: dict[str, Case] = {}
    for case in cases:
        if case["version"] > best.get(case["id"], {"version": 0})["version"]:
            best[case["id"]] = case
    return [to_row(best[i]) for i in sorted(best)]


def _overdue_sql(ph: str) -> str:
    return (f"(status IN ({', '.join([ph] * len(_WORKING))}) AND due_utc IS NOT NULL "
            f"AND due_utc < {ph})")


def query_sql(query: IncidentQuery, ph: str = "?") -> tuple[str, tuple[Any, ...]]:
    """The SELECT for a query, with its parameters."""
    if not 1 <= query.depth <= MAX_DEPTH:
        raise ValueError(f"a center's depth is 1 to {MAX_DEPTH}; got {query.depth}")
    where = [f"center{query.depth} = {ph}"]
    params: list[Any] = [query.center]
    if query.statuses:
        where.append(f"status IN ({', '.join([ph] * len(query.statuses))})")
        params += query.statuses
    for name in ("grid", "severity", "assignee"):
        value = getattr(query, name)
        if value is not None:
            where.append(f"{name} = {ph}")
            params.append(value)
    for column, values in (("category", query.categories), ("id", query.ids)):
        if values:
            where.append(f"{column} IN ({', '.join([ph] * len(values))})")
            params += values
    if query.reported_from is not None:
        where.append(f"reported_at >= {ph}")
        params.append(query.reported_from)
    if query.reported_to is not None:
        where.append(f"reported_at <= {ph}")
        params.append(query.reported_to)
    if query.overdue is not None:
        where.append(_overdue_sql(ph) if query.overdue else f"NOT {_overdue_sql(ph)}")
        params += [*_WORKING, query.now]
    if query.after is not None:
        where.append(f"(urgency > {ph} OR (urgency = {ph} AND id > {ph}))")
        params += [query.after[0], query.after[0], query.after[1]]
    sql = (f"SELECT {', '.join(COLUMNS)} FROM linkage_incidents WHERE {' AND '.join(where)} "
           f"ORDER BY urgency, id LIMIT {ph}")
    return sql, (*params, query.limit)


def overdue_sql(now: str, ph: str = "?") -> tuple[str, tuple[Any, ...]]:
    """The SELECT of every open case being worked with its due time before `now`."""
    return (f"SELECT {', '.join(COLUMNS)} FROM linkage_incidents WHERE {_overdue_sql(ph)} "
            "ORDER BY due_utc, id", (*_WORKING, now))


def due_sql(now: str, limit: int, ph: str = "?") -> tuple[str, tuple[Any, ...]]:
    """The SELECT of the cases whose next escalation is due by `now`, earliest first."""
    return (f"SELECT {', '.join(COLUMNS)} FROM linkage_incidents WHERE escalate_at_utc IS NOT NULL "
            f"AND escalate_at_utc <= {ph} ORDER BY escalate_at_utc, id LIMIT {ph}", (now, limit))


def open_sql() -> str:
    return (f"SELECT {', '.join(COLUMNS)} FROM linkage_incidents WHERE status NOT IN "
            f"({', '.join(repr(s) for s in _TERMINAL)})")


class MemoryRows:
    """The same answers from a dict, for the memory view store."""

    def __init__(self) -> None:
        self.rows: dict[str, Case] = {}

    def upsert(self, cases: Iterable[Case]) -> None:
        for case in cases:
            if case["version"] > self.rows.get(case["id"], {"version": 0})["version"]:
                self.rows[case["id"]] = case

    def open_cases(self) -> list[Case]:
        return [c for c in self.rows.values() if c["status"] not in TERMINAL]

    @staticmethod
    def _overdue(case: Case, now: str) -> bool:
        due = utc_text(case.get("due"))
        return case["status"] in WORKING and due is not None and due < now

    def incidents(self, query: IncidentQuery) -> list[Case]:
        def wanted(case: Case) -> bool:
            from_root = list(reversed(case["centers"]))
            return (len(from_root) >= query.depth and from_root[query.depth - 1] == query.center
                    and (not query.statuses or case["status"] in query.statuses)
                    and all(getattr(query, f) in (None, case.get(f))
                            for f in ("grid", "severity", "assignee"))
                    and (query.overdue is None
                         or self._overdue(case, query.now) == query.overdue)
                    and (query.after is None or (case["urgency"], case["id"]) > query.after)
                    and (not query.categories or case.get("category") in query.categories)
                    and (not query.ids or case["id"] in query.ids)
                    and (query.reported_from is None
                         or str(case.get("reported_at")) >= query.reported_from)
                    and (query.reported_to is None
                         or str(case.get("reported_at")) <= query.reported_to))

        found = sorted((c for c in self.rows.values() if wanted(c)),
                       key=lambda c: (c["urgency"], c["id"]))
        return found[:query.limit]

    def overdue(self, now: str) -> list[Case]:
        return sorted((c for c in self.rows.values() if self._overdue(c, now)),
                      key=lambda c: (utc_text(c.get("due")) or "", c["id"]))

    def due(self, now: str, limit: int) -> list[Case]:
        # A memory store is for tests and demos: a scan, with the SQL stores' answers.
        found = sorted((c for c in self.rows.values()
                        if (utc_text(c.get("escalate_at")) or "~") <= now),
                       key=lambda c: (utc_text(c.get("escalate_at")) or "", c["id"]))
        return found[:limit]


class PostgresIncidentRows:
    """The read model of distributed mode: the worker upserts, the hubs query."""

    def __init__(self, dsn: str, schema_name: str = "", retry_every: float = 0.5) -> None:
        self.dsn = dsn
        self.schema_name = schema_name
        self.retry_every = retry_every
        self._lock = threading.Lock()
        self._conn = self._connect()
        # Under the schema's DDL lock: a worker and hubs start together on a fresh schema.
        with self._lock, ddl_lock(self._conn, schema_name):
            with self._conn.transaction():
                for statement in schema():
                    self._conn.execute(statement)
            add_deadline_index(self._conn.execute)

    def _connect(self) -> Any:
        import psycopg
        from psycopg import sql

        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        if self.schema_name:  # beside the event tables (LINKAGE_POSTGRES_SCHEMA)
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema_name)))
        return conn

    def _run(self, work: Callable[[Any], Any]) -> Any:
        """Run `work(connection)`; once more on a new connection if the old one was lost."""
        import psycopg

        with self._lock:
            try:
                return work(self._conn)
            except psycopg.OperationalError:
                if not self._conn.closed and not self._conn.broken:
                    raise
                self._conn = self._connect()
                return work(self._conn)

    def _rows(self, statement: str, params: tuple[Any, ...]) -> list[Case]:
        return [to_case(row) for row in
                self._run(lambda conn: conn.execute(statement, params).fetchall())]

    def incidents(self, query: IncidentQuery) -> list[Case]:
        return self._rows(*query_sql(query, "%s"))

    def overdue(self, now: str) -> list[Case]:
        return self._rows(*overdue_sql(now, "%s"))

    def due(self, now: str, limit: int) -> list[Case]:
        return self._rows(*due_sql(now, limit, "%s"))

    def upsert_now(self, cases: Iterable[Case]) -> None:
        rows = latest(cases)

        def write(conn: Any) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(upsert_sql("%s"), rows)

        self._run(write)

    async def upsert(self, cases: list[Case]) -> None:
        """Upsert from the worker's loop; waits for PostgreSQL rather than dropping rows."""
        while True:
            try:
                await asyncio.to_thread(self.upsert_now, cases)
                return
            except Exception as exc:  # PostgreSQL down or restarting: the batch waits for it
                log.warning("read model upsert failed (%s); retrying %d rows", exc, len(cases))
                await asyncio.sleep(self.retry_every)

    def close(self) -> None:
        self._conn.close()
