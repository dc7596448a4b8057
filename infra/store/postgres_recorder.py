"""eventsourcing's PostgreSQL application recorder, signalling each commit (infra/store/commits.py)
and creating its tables under the DDL lock.

Its `create_table` runs CREATE TYPE, CREATE TABLE and CREATE OR REPLACE FUNCTION; two processes
doing so at once on the same schema fail one of them. Here they take turns (`ddl_lock`), and a
schema that does not exist yet is created first.

Plugged in through eventsourcing's own `APPLICATION_RECORDER_TOPIC` setting, as the SQLite one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from infra.store.commits import SignalsCommits
from infra.store.ddl_lock import ddl_lock


class LinkagePostgresRecorder(SignalsCommits, PostgresApplicationRecorder):
    def create_table(self) -> None:
        with self.datastore.get_connection() as conn, ddl_lock(conn, self.datastore.schema):
            super().create_table()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)  # committed
        if stored_events:
            self.committed(len(stored_events))
        return ids
