"""The deliverer of one process, from settings: its store, its subscriptions (the file's and
the CLI's), where it reads the log, what it reports to the metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

from infra.outbound.deliverer import Deliverer, ReadNotifications, Tuning
from infra.outbound.store import PENDING, OutboundStore
from infra.outbound.subscriptions import Subscription, load
from infra.security.merkle_store import TREE_TABLES, TreeReader
from infra.security.seal_snapshot import SealSnapshot
from infra.security.tree_head import TreeHead
from infra.settings import Settings
from infra.store.sqldb import Database

log = logging.getLogger(__name__)


def outbound_store(settings: Settings, *, create: bool = True) -> OutboundStore:
    return OutboundStore(Database.for_settings(settings, settings.data_dir / "outbound.db"),
                         create=create)


def tuning(settings: Settings) -> Tuning:
    return Tuning(poll=settings.outbound_poll, timeout=settings.outbound_timeout,
                  max_attempts=settings.outbound_max_attempts, backoff=settings.outbound_backoff,
                  max_backoff=settings.outbound_max_backoff)


def file_subscriptions(settings: Settings, centers: Collection[str]) -> list[Subscription]:
    """The subscriptions of LINKAGE_OUTBOUND_FILE, checked (SubscriptionError names a problem)."""
    return load(settings.outbound_file, centers) if settings.outbound_file else []


class SealedHeads:
    """The signed tree heads stored with the event store, each read in a read-only snapshot
    (no lock a command or the sealer would wait for).

    On PostgreSQL one read-only connection is kept for the deliverer's polls (every
    `LINKAGE_OUTBOUND_POLL` while a `tree_head_signed` subscription exists), each read its own
    `REPEATABLE READ READ ONLY` transaction; a broken connection is dropped and the next poll
    opens another. SQLite opens its file read-only per read (no server round trip)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pg: Any = None

    def _read(self, read: Callable[[TreeReader], Any]) -> Any:
        if self.settings.store != "postgres":
            with SealSnapshot.for_settings(self.settings) as snapshot:
                return read(TreeReader(snapshot.query))
        import psycopg

        if self._pg is None or self._pg.closed:
            self._pg = open_read_only(self.settings)
        try:
            with self._pg.transaction():
                present = self._pg.execute(
                    "SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest(%s::text[]) t",
                    (list(TREE_TABLES),)).fetchone()[0]

                def query(statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
                    if not present:  # nothing sealed yet: no heads
                        return []
                    return list(self._pg.execute(statement.replace("?", "%s"),
                                                 tuple(params)).fetchall())

                return read(TreeReader(query))
        except psycopg.OperationalError:
            self.close()
            raise

    def latest(self) -> int:
        head = self._read(lambda reader: reader.head())
        return head.tree_size if head is not None else 0

    def after(self, tree_size: int, limit: int) -> list[TreeHead]:
        heads: list[TreeHead] = self._read(
            lambda reader: reader.heads(tree_size + 1, limit=limit))
        return heads

    def close(self) -> None:
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg.close()
            self._pg = None


def open_read_only(settings: Settings) -> Any:
    """A read-only PostgreSQL connection on the store's schema, each transaction a snapshot."""
    import psycopg
    from psycopg import sql

    conn = psycopg.connect(settings.postgres_dsn, connect_timeout=5)
    conn.read_only = True
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    if settings.postgres_schema:
        conn.execute(sql.SQL("SET search_path TO {}").format(
            sql.Identifier(settings.postgres_schema)))
    conn.commit()
    return conn


def build_deliverer(settings: Settings, centers: Collection[str], read: ReadNotifications,
                    head: Callable[[], int], metrics: Any) -> Deliverer:
    from_file = file_subscriptions(settings, centers)
    store = outbound_store(settings)
    named = {s.name for s in from_file}

    def subscriptions() -> list[Subscription]:
        added = [s for s in store.subscriptions() if s.name not in named]  # the file's win
        return [*from_file, *added]

    def on_result(subscription: str, outcome: str) -> None:
        metrics.outbound.labels(subscription, outcome).inc()

    def pending() -> float:
        with store.db.tx() as tx:
            rows = tx.execute("SELECT COUNT(*) FROM linkage_outbound_deliveries WHERE status = ?",
                              (PENDING,))
        return float(rows[0][0])

    metrics.gauge("linkage_outbound_pending", "Outbound deliveries waiting to be delivered",
                  pending)
    return Deliverer(store, read, subscriptions, sender=settings.outbound_sender, head=head,
                     tuning=tuning(settings), on_result=on_result, heads=SealedHeads(settings))
