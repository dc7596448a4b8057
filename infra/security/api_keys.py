"""Feed API keys: random secrets stored only as SHA-256 digests; revocable.

A key reads `lk_<key id>_<secret>`. The key id finds the row; the secret's
digest is compared in constant time. Revoked keys stay listed (who, when).
Every process polls `revoked()` (infra/security/revocation.py) to close the
feed sockets a revoked key holds open; the ingest writer asks `active()` per batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.incident import Actor
from infra.settings import Settings
from infra.store.sqldb import Database

log = logging.getLogger(__name__)
PREFIX = "lk_"


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    feed: str
    center: str | None
    created_at: str
    revoked_at: str | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class FeedNameTaken(ValueError):
    """A feed name already used by a key of another center, and not explicitly shared."""


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self.db = db
        with db.ddl() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS linkage_api_keys ("
                "key_id TEXT PRIMARY KEY, feed TEXT NOT NULL, center TEXT, "
                "digest TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)"
            )

    @classmethod
    def for_settings(cls, settings: Settings) -> ApiKeys:
        return cls(Database.for_settings(settings, settings.keys_path))

    def issue(self, feed: str, center: str | None = None, *, shared: bool = False) -> tuple[str, str]:
        """A new key for a feed: (key id, the full key — shown once, never stored).

        Alert ids derive from the feed name, so keys with one name address the same alerts: a
        name an active key with another center uses is refused (FeedNameTaken) unless `shared`.
        Another key with the same name and center (rotating a key) is allowed."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with self.db.tx() as tx:
            rows = tx.execute(
                "SELECT key_id, center FROM linkage_api_keys WHERE feed = ? AND revoked_at IS NULL",
                (feed,),
            )
            others = [(other, where) for other, where in rows if where != center]
            if others and not shared:
                other, where = others[0]
                raise FeedNameTaken(
                    f"feed name {feed!r} is used by key {other} (center {where or 'none'}), and keys "
                    "with one feed name share its alerts; choose another name, or share it "
                    "explicitly (linkage feed-key issue --shared)")
            tx.execute(
                "INSERT INTO linkage_api_keys (key_id, feed, center, digest, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key_id, feed, center, _digest(secret), datetime.now(UTC).isoformat()),
            )
        return key_id, f"{PREFIX}{key_id}_{secret}"

    def revoke(self, key_id: str) -> bool:
        with self.db.tx() as tx:
            rows = tx.execute(
                "UPDATE linkage_api_keys SET revoked_at = ? "
                "WHERE key_id = ? AND revoked_at IS NULL RETURNING key_id",
                (datetime.now(UTC).isoformat(), key_id),
            )
        return bool(rows)

    def list(self) -> list[KeyInfo]:
        with self.db.tx() as tx:
            rows = tx.execute(
                "SELECT key_id, feed, center, created_at, revoked_at FROM linkage_api_keys "
                "ORDER BY created_at"
            )
        return [KeyInfo(*row) for row in rows]

    def revoked(self) -> frozenset[str]:
        """The ids of every revoked key (a small table: read whole)."""
        with self.db.tx() as tx:
            rows = tx.execute("SELECT key_id FROM linkage_api_keys WHERE revoked_at IS NOT NULL")
        return frozenset(row[0] for row in rows)

    def active(self, key_id: str) -> bool:
        """Whether the key exists and is not revoked."""
        with self.db.tx() as tx:
            rows = tx.execute("SELECT 1 FROM linkage_api_keys WHERE key_id = ? AND "
                              "revoked_at IS NULL", (key_id,))
        return bool(rows)

    @staticmethod
    def key_id(key: str) -> str | None:
        """The id part of a key as presented (unverified), None when it has no such shape."""
        if not key.startswith(PREFIX) or key.count("_") < 2:
            return None
        return key[len(PREFIX):].partition("_")[0]

    def verify(self, key: str) -> Actor | None:
        """The feed actor a valid, unrevoked key names; None otherwise."""
        key_id = self.key_id(key)
        if key_id is None:
            return None
        secret = key[len(PREFIX) + len(key_id) + 1:]
        with self.db.tx() as tx:
            rows = tx.execute(
                "SELECT feed, center, digest, revoked_at FROM linkage_api_keys WHERE key_id = ?",
                (key_id,),
            )
        if not rows:
            return None
        feed, center, digest, revoked_at = rows[0]
        if revoked_at is not None or not hmac.compare_digest(digest, _digest(secret)):
            return None
        return {"user": f"feed:{feed}", "role": "feed", "center": center}


async def poll_revoked(keys: ApiKeys, update: Callable[[frozenset[str]], None],
                       interval: float) -> None:
    """Hand `update` the revoked key ids every `interval` seconds: a key revoked by the CLI or
    another process reaches this one's open feed sockets within that time."""
    while True:
        try:
            update(await asyncio.to_thread(keys.revoked))
        except Exception as exc:  # the store is briefly unreachable: keep the last set, retry
            log.warning("reading revoked feed keys failed (%s); retrying in %gs", exc, interval)
        await asyncio.sleep(interval)
