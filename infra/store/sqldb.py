"""A small SQL helper over SQLite or PostgreSQL, for the security tables (seal chain, keys).

Statements use `?` placeholders; on PostgreSQL they become `%s`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from infra.settings import Settings
from infra.store.write_turn import WriteTurn


class Tx(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...


class _SQLiteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, tuple(params)).fetchall())

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)


class _PostgresTx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(sql.replace("?", "%s"), tuple(params))
        return list(cur.fetchall()) if cur.description else []

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)


class Database:
    """One transaction per `with db.tx() as tx:` block. On SQLite each thread keeps its connection
    open between blocks (opening one per block cost ~2 µs per sealed event at alert-burst rates);
    on PostgreSQL each block has a connection of its own.

    With `turns`, each SQLite block holds a turn at writing its file (infra/store/write_turn.py),
    the turns the event store's writers take: a block on `events.db` (the seal chain, view
    snapshots) waits for the officers' command in flight and is woken when it commits, and the
    next command waits for the block, instead of both polling for SQLite's lock in its busy
    handler."""

    def __init__(self, kind: str, sqlite_path: Path | None = None, dsn: str = "",
                 schema: str = "", turns: bool = False) -> None:
        self.kind = kind
        self.sqlite_path = sqlite_path
        self.dsn = dsn
        self.schema = schema
        self._local = threading.local()
        # Turns only where the file's other writers take them (the event store's): elsewhere a
        # turn would cost a lock file and guard nothing.
        self.turn = WriteTurn(sqlite_path) if turns and kind == "sqlite" and sqlite_path else None

    def _connect(self) -> sqlite3.Connection:
        assert self.sqlite_path is not None
        self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(self.sqlite_path, timeout=10, isolation_level=None)

    def _sqlite(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        """Close this thread's SQLite connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()

    @classmethod
    def for_settings(cls, settings: Settings, sqlite_path: Path, turns: bool = False) -> Database:
        """`turns`: take the event store writers' turns (for a file they write: events.db)."""
        if settings.store == "postgres":
            return cls("postgres", dsn=settings.postgres_dsn, schema=settings.postgres_schema)
        return cls("sqlite", sqlite_path=sqlite_path, turns=turns)

    @contextlib.contextmanager
    def tx(self) -> Iterator[Tx]:
        if self.kind == "sqlite":
            kept = self._sqlite()
            # A block inside another on this thread (or a coroutine's, across an await) gets a
            # connection of its own, as every block had before connections were kept.
            nested = kept.in_transaction
            conn = self._connect() if nested else kept
            # A nested block cannot take the turn its own thread holds (it meets the outer
            # block's lock in SQLite's busy handler, as before).
            turn: contextlib.AbstractContextManager[None] = (
                self.turn.held() if self.turn is not None and not nested
                else contextlib.nullcontext())
            try:
                with turn:
                    yield from self._sqlite_tx(conn, nested)
            finally:
                if nested:
                    conn.close()
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn, connect_timeout=5) as pg:
            if self.schema:
                pg.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            with pg.transaction():
                yield _PostgresTx(pg)

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        """A transaction that only reads. On SQLite a deferred one: it takes neither the write
        lock nor the writers' turn (WAL readers wait for no writer), so a reader on the event
        loop (the sealer's lag gauge on /metrics) never waits for a batch in flight. Writing in
        it is a mistake: it would take SQLite's write lock behind the turns' backs."""
        if self.kind != "sqlite":
            with self.tx() as tx:
                yield tx
            return
        kept = self._sqlite()
        nested = kept.in_transaction
        conn = self._connect() if nested else kept
        try:
            conn.execute("BEGIN")
            try:
                yield _SQLiteTx(conn)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        finally:
            if nested:
                conn.close()

    def _sqlite_tx(self, conn: sqlite3.Connection, nested: bool) -> Iterator[Tx]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            if not nested:
                self.close()  # e.g. the file went away: a fresh connection next time
            raise
        try:
            yield _SQLiteTx(conn)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def ddl(self) -> Iterator[Tx]:
        """A transaction for CREATE statements: on PostgreSQL, under the schema's DDL lock
        (`ddl_lock`: processes starting together take turns; a missing schema is created)."""
        if self.kind == "sqlite":
            with self.tx() as tx:
                yield tx
            return
        import psycopg

        from infra.store.ddl_lock import ddl_lock

        with (psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn,
              ddl_lock(conn, self.schema), self.tx() as tx):
            yield tx

    @property
    def blob(self) -> str:
        return "BYTEA" if self.kind == "postgres" else "BLOB"
