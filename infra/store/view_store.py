"""Where the projection runner keeps views, recent deltas, its position and the read model.

One port, three adapters (memory, SQLite, PostgreSQL), one contract test.
`commit` writes a batch's deltas, its incident records (the per-incident read model,
infra/store/incident_rows.py) and the new position in one transaction, so a restart
resumes exactly where the last committed batch ended, with the open cases as they were.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from command_center.incident_query import IncidentQuery
from infra.store import incident_rows
from infra.store.incident_rows import MemoryRows
from projections.cases import Case
from projections.patch import Change, View

Delta = tuple[str, int, list[Change]]  # (center, seq, changes)


def new_epoch() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Loaded:
    """What a view store holds: views at their last checkpoint plus the deltas after it, and
    the open cases at the position."""

    epoch: str
    position: int
    views: dict[str, tuple[int, View]] = field(default_factory=dict)
    deltas: dict[str, list[tuple[int, list[Change]]]] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)


class ViewStore(Protocol):
    def load(self) -> Loaded: ...

    def commit(
        self, position: int, deltas: list[Delta], views: dict[str, tuple[int, View]] | None = None,
        rows: list[Case] | None = None,
    ) -> None: ...

    def incidents(self, query: IncidentQuery) -> list[Case]: ...

    def overdue(self, now: str) -> list[Case]: ...

    def due(self, now: str, limit: int) -> list[Case]: ...

    def deltas_after(self, center: str, seq: int, limit: int) -> list[tuple[int, list[Change]]]: ...

    def reset(self) -> str: ...

    def close(self) -> None: ...


class MemoryViewStore:
    """For tests and throwaway runs."""

    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self._loaded = Loaded(epoch=new_epoch(), position=0)
        self._rows = MemoryRows()

    def load(self) -> Loaded:
        return Loaded(
            epoch=self._loaded.epoch,
            position=self._loaded.position,
            views={c: (s, orjson.loads(orjson.dumps(v))) for c, (s, v) in self._loaded.views.items()},
            deltas={c: list(d) for c, d in self._loaded.deltas.items()},
            cases=orjson.loads(orjson.dumps(self._rows.open_cases())),
        )

    def commit(
        self, position: int, deltas: list[Delta], views: dict[str, tuple[int, View]] | None = None,
        rows: list[Case] | None = None,
    ) -> None:
        self._rows.upsert(rows or ())
        for center, seq, changes in deltas:
            self._loaded.deltas.setdefault(center, []).append((seq, orjson.loads(orjson.dumps(changes))))
        if views:
            for center, (seq, view) in views.items():
                self._loaded.views[center] = (seq, orjson.loads(orjson.dumps(view)))
                kept = self._loaded.deltas.get(center, [])
                self._loaded.deltas[center] = [d for d in kept if d[0] > seq - self.keep]
        self._loaded.position = position

    def deltas_after(self, center: str, seq: int, limit: int) -> list[tuple[int, list[Change]]]:
        return [d for d in self._loaded.deltas.get(center, []) if d[0] > seq][:limit]

    def incidents(self, query: IncidentQuery) -> list[Case]:
        return self._rows.incidents(query)

    def overdue(self, now: str) -> list[Case]:
        return self._rows.overdue(now)

    def due(self, now: str, limit: int) -> list[Case]:
        return self._rows.due(now, limit)

    def reset(self) -> str:
        self._loaded = Loaded(epoch=new_epoch(), position=0)
        self._rows = MemoryRows()
        return self._loaded.epoch

    def close(self) -> None:
        pass


class _SQLViewStore:
    """Shared SQL for SQLite and PostgreSQL; subclasses supply a connection and placeholders."""

    ph = "?"
    blob = "BLOB"

    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self._lock = threading.Lock()

    # subclasses
    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _transaction(self) -> Any:
        raise NotImplementedError

    def _execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def _schema(self) -> None:
        b = self.blob
        for statement in (
            "CREATE TABLE IF NOT EXISTS linkage_view_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS linkage_views (center TEXT PRIMARY KEY, "
            f"seq BIGINT NOT NULL, view {b} NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS linkage_deltas (center TEXT NOT NULL, seq BIGINT NOT NULL, "
            f"changes {b} NOT NULL, PRIMARY KEY (center, seq))",
            *incident_rows.schema(),
        ):
            self._execute(statement)
        incident_rows.add_deadline_index(self._execute)

    def _meta(self, key: str) -> str | None:
        rows = self._execute(f"SELECT v FROM linkage_view_meta WHERE k = {self.ph}", (key,))
        return str(rows[0][0]) if rows else None

    def _set_meta(self, key: str, value: str) -> None:
        p = self.ph
        self._execute(
            f"INSERT INTO linkage_view_meta (k, v) VALUES ({p}, {p}) "
            "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            (key, value),
        )

    def load(self) -> Loaded:
        with self._lock, self._transaction():
            epoch = self._meta("epoch")
            if epoch is None:
                epoch = new_epoch()
                self._set_meta("epoch", epoch)
            position = int(self._meta("position") or 0)
            loaded = Loaded(epoch=epoch, position=position)
            for center, seq, blob in self._execute("SELECT center, seq, view FROM linkage_views"):
                loaded.views[center] = (int(seq), orjson.loads(bytes(blob)))
            for center, seq, blob in self._execute(
                "SELECT center, seq, changes FROM linkage_deltas ORDER BY center, seq"
            ):
                loaded.deltas.setdefault(center, []).append((int(seq), orjson.loads(bytes(blob))))
            loaded.cases = [incident_rows.to_case(row)
                            for row in self._execute(incident_rows.open_sql())]
        return loaded

    def commit(
        self, position: int, deltas: list[Delta], views: dict[str, tuple[int, View]] | None = None,
        rows: list[Case] | None = None,
    ) -> None:
        p = self.ph
        with self._lock, self._transaction():
            if rows:
                self._execute_many(incident_rows.upsert_sql(p), incident_rows.latest(rows))
            for center, seq, changes in deltas:
                self._execute(
                    f"INSERT INTO linkage_deltas (center, seq, changes) VALUES ({p}, {p}, {p}) "
                    "ON CONFLICT (center, seq) DO NOTHING",
                    (center, seq, orjson.dumps(changes)),
                )
            for center, (seq, view) in (views or {}).items():
                self._execute(
                    f"INSERT INTO linkage_views (center, seq, view) VALUES ({p}, {p}, {p}) "
                    "ON CONFLICT (center) DO UPDATE SET seq = excluded.seq, view = excluded.view",
                    (center, seq, orjson.dumps(view)),
                )
                self._execute(
                    f"DELETE FROM linkage_deltas WHERE center = {p} AND seq <= {p}",
                    (center, seq - self.keep),
                )
            self._set_meta("position", str(position))

    def deltas_after(self, center: str, seq: int, limit: int) -> list[tuple[int, list[Change]]]:
        p = self.ph
        with self._lock:
            rows = self._execute(
                f"SELECT seq, changes FROM linkage_deltas WHERE center = {p} AND seq > {p} "
                f"ORDER BY seq LIMIT {p}",
                (center, seq, limit),
            )
        return [(int(s), orjson.loads(bytes(c))) for s, c in rows]

    def incidents(self, query: IncidentQuery) -> list[Case]:
        statement, params = incident_rows.query_sql(query, self.ph)
        with self._lock:
            return [incident_rows.to_case(row) for row in self._execute(statement, params)]

    def overdue(self, now: str) -> list[Case]:
        with self._lock:
            rows = self._execute(*incident_rows.overdue_sql(now, self.ph))
        return [incident_rows.to_case(row) for row in rows]

    def due(self, now: str, limit: int) -> list[Case]:
        with self._lock:
            rows = self._execute(*incident_rows.due_sql(now, limit, self.ph))
        return [incident_rows.to_case(row) for row in rows]

    def reset(self) -> str:
        epoch = new_epoch()
        with self._lock, self._transaction():
            self._execute("DELETE FROM linkage_incidents")
            self._execute("DELETE FROM linkage_deltas")
            self._execute("DELETE FROM linkage_views")
            self._set_meta("epoch", epoch)
            self._set_meta("position", "0")
        return epoch


class SQLiteViewStore(_SQLViewStore):
    def __init__(self, path: str | Path, keep: int = 1000) -> None:
        super().__init__(keep)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._schema()

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def _execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._conn.executemany(sql, rows)

    def _transaction(self) -> Any:
        conn = self._conn

        class _Tx:
            def __enter__(self) -> None:
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type: Any, *_: Any) -> None:
                conn.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

    def close(self) -> None:
        self._conn.close()


class PostgresViewStore(_SQLViewStore):
    ph = "%s"
    blob = "BYTEA"

    def __init__(self, dsn: str, keep: int = 1000, schema: str = "") -> None:
        import psycopg
        from psycopg import sql

        from infra.store.ddl_lock import ddl_lock

        super().__init__(keep)
        self._conn = psycopg.connect(dsn, autocommit=True)
        if schema:  # beside the event tables (LINKAGE_POSTGRES_SCHEMA), not in public
            self._conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        with ddl_lock(self._conn, schema):  # processes starting together take turns
            self._schema()

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self._conn.execute(sql.replace("excluded.", "EXCLUDED."), params)
        return cursor.fetchall() if cursor.description else []

    def _execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(sql, rows)

    def _transaction(self) -> Any:
        return self._conn.transaction()

    def close(self) -> None:
        self._conn.close()
