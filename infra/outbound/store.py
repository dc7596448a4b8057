"""The outbound store: subscriptions added by the CLI, the position in the notification log the
deliverer has scanned up to, and one delivery row per (subscription, event) with its state.

The row's key is the idempotency key: a scan that runs twice (a restart between its insert and
its position) adds nothing twice. Rows and position change in one transaction. SQLite beside
the event store in embedded mode, PostgreSQL in distributed mode (infra/store/sqldb.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from infra.outbound.subscriptions import Subscription
from infra.store.sqldb import Database

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
TABLES = ("linkage_outbound_subscriptions", "linkage_outbound_deliveries",
          "linkage_outbound_position", "linkage_outbound_windows")


@dataclass(frozen=True)
class Delivery:
    subscription: str
    notification_id: int
    subject: str
    content_type: str
    body: bytes
    attempts: int
    next_at: float

    @property
    def key(self) -> str:
        """The idempotency key: the same for every attempt at this subscriber and event."""
        return f"{self.subscription}:{self.notification_id}"


@dataclass(frozen=True)
class Tally:
    subscription: str
    pending: int
    delivered: int
    dead: int
    oldest_pending: float | None
    last_error: str | None


class OutboundStore:
    def __init__(self, db: Database, *, create: bool = True) -> None:
        self.db = db
        if create and db.kind == "sqlite" and db.sqlite_path is not None:
            import sqlite3

            db.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(db.sqlite_path)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")  # kept by the file: readers never wait
        if create:
            with db.ddl() as tx:
                # DOUBLE PRECISION: PostgreSQL's REAL is 4 bytes, too coarse for Unix times.
                tx.execute("CREATE TABLE IF NOT EXISTS linkage_outbound_subscriptions ("
                           "name TEXT PRIMARY KEY, spec TEXT NOT NULL, "
                           "created_at DOUBLE PRECISION NOT NULL)")
                tx.execute(
                    "CREATE TABLE IF NOT EXISTS linkage_outbound_deliveries ("
                    "subscription TEXT NOT NULL, notification_id BIGINT NOT NULL, "
                    "subject TEXT NOT NULL, content_type TEXT NOT NULL, "
                    f"body {db.blob} NOT NULL, status TEXT NOT NULL, "
                    "attempts INTEGER NOT NULL, next_at DOUBLE PRECISION NOT NULL, "
                    "last_error TEXT, "
                    "created_at DOUBLE PRECISION NOT NULL, done_at DOUBLE PRECISION, "
                    "PRIMARY KEY (subscription, notification_id))")
                tx.execute("CREATE INDEX IF NOT EXISTS linkage_outbound_pending ON "
                           "linkage_outbound_deliveries (subscription, status, notification_id)")
                tx.execute("CREATE TABLE IF NOT EXISTS linkage_outbound_position ("
                           "name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
                tx.execute("CREATE TABLE IF NOT EXISTS linkage_outbound_windows ("
                           "name TEXT PRIMARY KEY, state TEXT NOT NULL)")

    # -- subscriptions added by the CLI ------------------------------------------------------------

    def add(self, subscription: Subscription) -> bool:
        """Store a subscription; False when one of that name exists already."""
        import msgspec

        with self.db.tx() as tx:
            if tx.execute("SELECT 1 FROM linkage_outbound_subscriptions WHERE name = ?",
                          (subscription.name,)):
                return False
            tx.execute("INSERT INTO linkage_outbound_subscriptions (name, spec, created_at) "
                       "VALUES (?, ?, ?)", (subscription.name,
                                            msgspec.json.encode(subscription).decode(),
                                            time.time()))
        return True

    def remove(self, name: str) -> bool:
        with self.db.tx() as tx:
            return bool(tx.execute("DELETE FROM linkage_outbound_subscriptions WHERE name = ? "
                                   "RETURNING name", (name,)))

    def subscriptions(self) -> list[Subscription]:
        import msgspec

        with self.db.tx() as tx:
            rows = tx.execute("SELECT spec FROM linkage_outbound_subscriptions ORDER BY name")
        return [msgspec.json.decode(row[0], type=Subscription) for row in rows]

    # -- the scan ------------------------------------------------------------------------------------

    def position(self, name: str) -> int | None:
        with self.db.tx() as tx:
            rows = tx.execute("SELECT position FROM linkage_outbound_position WHERE name = ?",
                              (name,))
        return int(rows[0][0]) if rows else None

    def windows(self, name: str) -> dict[str, list[Any]]:
        """The storm windows the scan had counted up to its position."""
        with self.db.tx() as tx:
            rows = tx.execute("SELECT state FROM linkage_outbound_windows WHERE name = ?",
                              (name,))
        state: dict[str, list[Any]] = orjson.loads(rows[0][0]) if rows else {}
        return state

    def record_scan(self, name: str, position: int,
                    deliveries: Iterable[tuple[str, int, str, str, bytes]],
                    windows: dict[str, list[Any]] | None = None) -> int:
        """Add deliveries (subscription, notification id, subject, content type, body), move
        the scan position and keep its storm windows, in one transaction; returns how many
        rows were new."""
        now = time.time()
        added = 0
        with self.db.tx() as tx:
            if windows is not None:
                tx.execute("INSERT INTO linkage_outbound_windows (name, state) VALUES (?, ?) "
                           "ON CONFLICT (name) DO UPDATE SET state = excluded.state",
                           (name, orjson.dumps(windows).decode()))
            for subscription, notification_id, subject, content_type, body in deliveries:
                added += len(tx.execute(
                    "INSERT INTO linkage_outbound_deliveries (subscription, notification_id, "
                    "subject, content_type, body, status, attempts, next_at, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT DO NOTHING "
                    "RETURNING notification_id",
                    (subscription, notification_id, subject, content_type, body, PENDING, now,
                     now)))
            tx.execute("INSERT INTO linkage_outbound_position (name, position) VALUES (?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                       (name, position))
        return added

    # -- deliveries ---------------------------------------------------------------------------------

    def next_pending(self, subscription: str, limit: int = 1) -> list[Delivery]:
        """The oldest pending deliveries of a subscription: they go out in event order."""
        with self.db.tx() as tx:
            rows = tx.execute(
                "SELECT subscription, notification_id, subject, content_type, body, attempts, "
                "next_at FROM linkage_outbound_deliveries WHERE subscription = ? AND status = ? "
                "ORDER BY notification_id LIMIT ?", (subscription, PENDING, limit))
        return [Delivery(r[0], int(r[1]), r[2], r[3], bytes(r[4]), int(r[5]), float(r[6]))
                for r in rows]

    def delivered(self, deliveries: Iterable[Delivery]) -> None:
        """Mark deliveries the receiver took (one transaction for them all)."""
        now = time.time()
        with self.db.tx() as tx:
            tx.executemany("UPDATE linkage_outbound_deliveries SET status = ?, attempts = ?, "
                           "done_at = ?, last_error = NULL WHERE subscription = ? AND "
                           "notification_id = ?",
                           [(DELIVERED, d.attempts + 1, now, d.subscription, d.notification_id)
                            for d in deliveries])

    def failed(self, delivery: Delivery, error: str, retry_at: float | None) -> None:
        """One more failed attempt: retried at `retry_at`, or a dead letter when None."""
        status = PENDING if retry_at is not None else DEAD
        with self.db.tx() as tx:
            tx.execute("UPDATE linkage_outbound_deliveries SET status = ?, attempts = ?, "
                       "next_at = ?, last_error = ?, done_at = ? WHERE subscription = ? AND "
                       "notification_id = ?",
                       (status, delivery.attempts + 1, retry_at or time.time(), error[:500],
                        None if retry_at is not None else time.time(), delivery.subscription,
                        delivery.notification_id))

    def retry_dead(self, subscription: str) -> int:
        """Dead letters of a subscription become pending again (sent in event order)."""
        with self.db.tx() as tx:
            return len(tx.execute(
                "UPDATE linkage_outbound_deliveries SET status = ?, attempts = 0, next_at = ?, "
                "done_at = NULL WHERE subscription = ? AND status = ? RETURNING notification_id",
                (PENDING, time.time(), subscription, DEAD)))

    def prune(self, before: float) -> int:
        """Forget deliveries made before `before` (the table holds what is still of use)."""
        with self.db.tx() as tx:
            return len(tx.execute("DELETE FROM linkage_outbound_deliveries WHERE status = ? "
                                  "AND done_at < ? RETURNING notification_id",
                                  (DELIVERED, before)))

    def dead_letters(self, subscription: str | None, limit: int = 100
                     ) -> list[tuple[str, int, str, int, str | None]]:
        """(subscription, notification id, subject, attempts, last error), oldest first."""
        sql = ("SELECT subscription, notification_id, subject, attempts, last_error FROM "
               "linkage_outbound_deliveries WHERE status = ?")
        params: list[Any] = [DEAD]
        if subscription is not None:
            sql += " AND subscription = ?"
            params.append(subscription)
        with self.db.tx() as tx:
            rows = tx.execute(sql + " ORDER BY subscription, notification_id LIMIT ?",
                              (*params, limit))
        return [(r[0], int(r[1]), r[2], int(r[3]), r[4]) for r in rows]

    def tallies(self) -> list[Tally]:
        with self.db.tx() as tx:
            rows = tx.execute(
                "SELECT subscription, "
                f"SUM(CASE WHEN status = '{PENDING}' THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN status = '{DELIVERED}' THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN status = '{DEAD}' THEN 1 ELSE 0 END), "
                f"MIN(CASE WHEN status = '{PENDING}' THEN created_at END) "
                "FROM linkage_outbound_deliveries GROUP BY subscription ORDER BY subscription")
            errors = dict(tx.execute(
                "SELECT subscription, last_error FROM linkage_outbound_deliveries d WHERE "
                "last_error IS NOT NULL AND notification_id = (SELECT MAX(notification_id) FROM "
                "linkage_outbound_deliveries e WHERE e.subscription = d.subscription AND "
                "e.last_error IS NOT NULL)"))
        return [Tally(r[0], int(r[1] or 0), int(r[2] or 0), int(r[3] or 0),
                      float(r[4]) if r[4] is not None else None, errors.get(r[0]))
                for r in rows]


def json_spec(subscription: Subscription) -> str:
    """A subscription as the CLI lists it, without its secret."""
    return orjson.dumps({"name": subscription.name, "url": subscription.url,
                         "format": subscription.format, "events": subscription.events,
                         "centers": subscription.centers}).decode()
