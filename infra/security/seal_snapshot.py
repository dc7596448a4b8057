"""A read-only, consistent snapshot of the event store and the seal tables.

`audit verify` and `audit export` read through it and nothing else, so they cannot write: SQLite
opens the file with `mode=ro`; PostgreSQL runs one `REPEATABLE READ READ ONLY` transaction. Either
way every read sees the same moment, so a sealer running meanwhile cannot make the chain and its
tracking row look inconsistent. Missing seal tables read as empty (nothing sealed).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.application import IncidentService
from infra.security.merkle_store import TREE_TABLES
from infra.security.seal_format import Stored
from infra.settings import Settings

TRACKING_NAME = "sealer"
SEAL_TABLES = ("linkage_seal_chain", "linkage_seal_checkpoints", "linkage_seal_tracking")
BATCH = 5000
LAST = 2**62


class StoreMissing(LookupError):
    """There is no event store where the settings point."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    k: int
    notification_id: int
    count: int
    hash: bytes
    signature: bytes
    public_key: str  # PEM, as the sealer recorded it
    created_at: str


class SealSnapshot:
    def __init__(self, conn: Any, kind: str, events: str, id_column: str) -> None:
        self._conn = conn
        self._kind = kind
        self._events = events  # eventsourcing's table (its name: a fixed identifier, not input)
        self._id = id_column
        self._present = {t for t in SEAL_TABLES if self._exists(t)}
        self._tree_present = all(self._exists(t) for t in TREE_TABLES)
        if not self._exists(events):
            raise StoreMissing(f"no table {events!r} here: is this the data dir / schema of "
                               "a linkage event store?")

    @classmethod
    @contextlib.contextmanager
    def open(cls, kind: str, sqlite_path: Path | None = None, dsn: str = "",
             schema: str = "") -> Iterator[SealSnapshot]:
        if kind == "sqlite":
            assert sqlite_path is not None
            if not sqlite_path.is_file():
                raise StoreMissing(f"no event store at {sqlite_path}")
            conn = sqlite3.connect(sqlite_path.resolve().as_uri() + "?mode=ro", uri=True,
                                   isolation_level=None, timeout=10)
            try:
                conn.execute("BEGIN")  # WAL: the first read fixes the snapshot
                yield cls(conn, kind, "stored_events", "rowid")
            finally:
                conn.close()  # an open read transaction ends with the connection
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(dsn, connect_timeout=5) as pg:
            pg.read_only = True
            pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                if schema:
                    pg.execute(sql.SQL("SET LOCAL search_path TO {}").format(
                        sql.Identifier(schema)))
                # eventsourcing names the table after the application
                yield cls(pg, kind, f"{IncidentService.name}_events", "notification_id")
            finally:
                pg.rollback()

    @classmethod
    def for_settings(cls, settings: Settings) -> contextlib.AbstractContextManager[SealSnapshot]:
        if settings.store == "postgres":
            return cls.open("postgres", dsn=settings.postgres_dsn,
                            schema=settings.postgres_schema)
        return cls.open("sqlite", settings.sqlite_path)

    def _query(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._kind == "postgres":
            statement = statement.replace("?", "%s")
        return list(self._conn.execute(statement, params).fetchall())

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read of any table (the Merkle tree's, `merkle_store.TreeReader`); missing tree
        tables read as empty."""
        if not self._tree_present:
            return []
        return self._query(statement, tuple(params))

    def _exists(self, table: str) -> bool:
        if self._kind == "postgres":
            return self._query("SELECT to_regclass(?) IS NOT NULL", (table,))[0][0] is True
        return bool(self._query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                (table,)))

    def tracking(self) -> tuple[int, int, bytes] | None:
        """The sealer's position: (last sealed notification id, events sealed, chain head)."""
        if "linkage_seal_tracking" not in self._present:
            return None
        rows = self._query("SELECT notification_id, count, head FROM linkage_seal_tracking "
                           "WHERE name = ?", (TRACKING_NAME,))
        if not rows:
            return None
        n, count, head = rows[0]
        return int(n), int(count), bytes(head)

    def chain(self, start: int = 1, stop: int = LAST) -> Iterator[tuple[int, bytes, bytes]]:
        """Chain rows (notification id, content digest, hash) in order, read in batches."""
        if "linkage_seal_chain" not in self._present:
            return
        after = start - 1
        while True:
            rows = self._query("SELECT notification_id, content, hash FROM linkage_seal_chain "
                               "WHERE notification_id > ? AND notification_id <= ? "
                               "ORDER BY notification_id LIMIT ?", (after, stop, BATCH))
            yield from ((int(n), bytes(c), bytes(h)) for n, c, h in rows)
            if len(rows) < BATCH:
                return
            after = int(rows[-1][0])

    def sealed_as(self, content: bytes) -> int | None:
        """The notification id an event with this content digest was sealed as."""
        if "linkage_seal_chain" not in self._present:
            return None
        rows = self._query("SELECT notification_id FROM linkage_seal_chain WHERE content = ?",
                           (content,))
        return int(rows[0][0]) if rows else None

    def checkpoints(self) -> list[Checkpoint]:
        if "linkage_seal_checkpoints" not in self._present:
            return []
        rows = self._query("SELECT k, notification_id, count, hash, signature, public_key, "
                           "created_at FROM linkage_seal_checkpoints ORDER BY k")
        return [Checkpoint(int(k), int(n), int(c), bytes(h), bytes(s), str(p), str(t))
                for k, n, c, h, s, p, t in rows]

    def events(self, start: int = 1, stop: int = LAST) -> Iterator[Stored]:
        """Stored notifications with start <= id <= stop, in order, read in batches."""
        after = start - 1
        while True:
            rows = self._query(f"SELECT {self._id}, originator_id, originator_version, topic, "
                               f"state FROM {self._events} WHERE {self._id} > ? AND "
                               f"{self._id} <= ? ORDER BY {self._id} LIMIT ?",
                               (after, stop, BATCH))
            yield from (Stored(int(n), oid, int(v), t, bytes(s)) for n, oid, v, t, s in rows)
            if len(rows) < BATCH:
                return
            after = int(rows[-1][0])

    def events_of(self, originator_id: str, limit: int) -> list[Stored]:
        """The stored notifications of one aggregate (an incident), in order, at most `limit`."""
        from uuid import UUID

        oid = UUID(originator_id)
        # SQLite holds the id as text: 32 hex digits (as eventsourcing writes it), or hyphenated
        ids: tuple[Any, ...] = (oid.hex, str(oid)) if self._kind == "sqlite" else (oid, oid)
        rows = self._query(f"SELECT {self._id}, originator_id, originator_version, topic, state "
                           f"FROM {self._events} WHERE originator_id IN (?, ?) "
                           f"ORDER BY {self._id} LIMIT ?", (*ids, limit))
        return [Stored(int(n), o, int(v), t, bytes(st)) for n, o, v, t, st in rows]

    def events_after(self, n: int) -> tuple[int, int, int]:
        """(how many, first id, last id) of the stored notifications after id n."""
        count, first, last = self._query(f"SELECT COUNT(*), MIN({self._id}), MAX({self._id}) "
                                         f"FROM {self._events} WHERE {self._id} > ?", (n,))[0]
        return int(count), int(first or 0), int(last or 0)
