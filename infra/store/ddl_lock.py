"""Schema changes one process at a time: every CREATE on PostgreSQL runs under this lock.

Processes that start together on a fresh schema (a relay and two hubs) would otherwise run
CREATE TABLE and CREATE OR REPLACE FUNCTION at the same moment, and PostgreSQL fails one of
them ("tuple concurrently updated"). The lock is an advisory lock per schema, held by the
creating session for the block. A configured schema that does not exist is created under it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from infra.store.lease import lock_key

log = logging.getLogger(__name__)

WAIT = 60  # seconds to wait for another process's CREATEs before giving up, naming the wait


class SchemaLockTimeout(RuntimeError):
    """Another process held the schema's DDL lock for longer than WAIT seconds."""


@contextlib.contextmanager
def ddl_lock(conn: Any, schema: str) -> Iterator[None]:
    """Hold the DDL lock of `schema` (empty: public) on `conn`, an autocommit psycopg connection,
    for the block; the schema exists when the block starts."""
    import psycopg
    from psycopg import sql

    schema = schema or "public"
    key = lock_key(schema, "ddl")
    try:
        with conn.transaction():  # SET LOCAL: the session's own lock_timeout is left alone
            conn.execute(f"SET LOCAL lock_timeout = '{WAIT}s'")
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    except psycopg.errors.LockNotAvailable:
        raise SchemaLockTimeout(
            f"waited {WAIT} s for another process to finish creating tables in schema "
            f"{schema!r}; is one stuck? (pg_locks, advisory lock {key})") from None
    try:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            log.info("created PostgreSQL schema %s (LINKAGE_POSTGRES_SCHEMA)", schema)
        yield
    finally:
        with contextlib.suppress(Exception):  # a lost connection has released it already
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
