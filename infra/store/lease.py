"""A lease: one process at a time runs a singleton (the relay, the sealer, the SLA watcher).

The lease is a session-level PostgreSQL advisory lock (`pg_try_advisory_lock`), taken on a
connection of its own and held for as long as that session lives. A holder that dies, or whose
connection is lost, loses the lease with it; standbys try again every `retry_every` seconds and
one of them takes over. The holder checks its connection as often: a check that fails or takes
longer than `check_timeout` counts as a lost lease, and the work is cancelled at once. The
server ends a lease session that stays silent for `idle_timeout` seconds (idle_session_timeout),
so a holder cut off by the network frees the lock only after it has stopped its own work.

On SQLite (embedded mode, one process) there is nobody to share with: the lease is always held.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from infra.settings import Settings

log = logging.getLogger(__name__)

# The session that holds an advisory lock, by the lock's two 32-bit halves (pg_locks' view of a
# bigint key), named by its application_name (set by every Lease to "linkage <name> pid … on …").
_HOLDER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = %s AND l.objid::bigint = %s"
)


def lock_key(schema: str, name: str) -> int:
    """The advisory lock id of `name` within a schema (advisory locks are per database, and
    deployments that share a database keep apart by schema)."""
    digest = hashlib.blake2b(f"linkage/{schema or 'public'}/{name}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def _halves(key: int) -> tuple[int, int]:
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def holder(dsn: str, name: str, schema: str = "") -> str | None:
    """Who holds the lease `name` now (its application_name), or None; for operators and tests."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(_HOLDER, _halves(lock_key(schema, name))).fetchone()
    return str(row[0]) if row else None


class Lease:
    """Runs a piece of work only while this process holds the named lease."""

    def __init__(self, dsn: str | None, name: str, *, schema: str = "", retry_every: float = 1.0,
                 check_timeout: float = 3.0, idle_timeout: float = 10.0) -> None:
        self.dsn = dsn
        self.name = name
        self.schema = schema
        self.key = lock_key(schema, name)
        self.retry_every = retry_every
        self.check_timeout = check_timeout
        self.idle_timeout = idle_timeout
        self.label = f"linkage {name} pid {os.getpid()} on {socket.gethostname()}"[:63]
        self.held = False
        self.acquired = 0  # times this process took the lease
        self._conn: Any = None  # psycopg.AsyncConnection while connected

    @classmethod
    def for_settings(cls, settings: Settings, name: str) -> Lease:
        """A PostgreSQL lease in the configured schema; on SQLite, one that is always held."""
        dsn = settings.postgres_dsn if settings.store == "postgres" else None
        return cls(dsn, name, schema=settings.postgres_schema)

    def holding(self, work: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """`work` as a background task that runs only under this lease."""
        return lambda: self.run(work)

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` whenever the lease is held, until cancelled; when the lease is lost, cancel
        it at once and stand by again. Returns when `work` returns, raises what it raises (the
        lease is released first)."""
        if self.dsn is None:
            self.held = True
            try:
                await work()
            finally:
                self.held = False
            return
        while True:
            await self._acquire()
            task: asyncio.Future[None] = asyncio.ensure_future(work())
            try:
                lost = await self._watch(task)
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await self._release()
            if not lost:
                task.result()  # what the work raised, if anything
                return

    async def _acquire(self) -> None:
        told = False
        while True:
            try:
                if await self._try():
                    self.held = True
                    self.acquired += 1
                    log.info("lease %s taken by %s", self.name, self.label)
                    return
                if not told:
                    log.info("lease %s is held by %s; standing by (trying every %g s)",
                             self.name, await self._holder() or "another process",
                             self.retry_every)
                    told = True
            except Exception as exc:  # PostgreSQL unreachable or restarting: a standby waits
                await self._close()
                log.warning("lease %s: PostgreSQL failed (%s); trying again in %g s", self.name,
                            str(exc).strip() or type(exc).__name__, self.retry_every)
            await asyncio.sleep(self.retry_every)

    async def _try(self) -> bool:
        import psycopg

        if self._conn is None:
            self._conn = await psycopg.AsyncConnection.connect(
                self.dsn or "", autocommit=True, connect_timeout=5, application_name=self.label)
            await self._conn.execute(
                f"SET idle_session_timeout = '{int(self.idle_timeout * 1000)}ms'")
        cursor = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def _holder(self) -> str | None:
        with contextlib.suppress(Exception):
            cursor = await self._conn.execute(_HOLDER, _halves(self.key))
            row = await cursor.fetchone()
            return str(row[0]) if row else None
        return None

    async def _watch(self, task: asyncio.Future[None]) -> bool:
        """Wait until the work ends (False) or the lease is lost (True)."""
        while True:
            done, _ = await asyncio.wait({task}, timeout=self.retry_every)
            if done:
                return False
            try:
                await asyncio.wait_for(self._conn.execute("SELECT 1"), self.check_timeout)
            except Exception as exc:
                self.held = False
                log.error("lease %s lost (%s): stopping its work now", self.name,
                          str(exc).strip() or type(exc).__name__)
                return True

    async def _release(self) -> None:
        self.held = False
        # Ending the session frees the lock; a standby takes it on its next try.
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self.check_timeout)
