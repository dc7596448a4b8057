"""eventsourcing's PostgreSQL application recorder, signalling each commit (infra/store/commits.py).

Plugged in through eventsourcing's own `APPLICATION_RECORDER_TOPIC` setting, as the SQLite one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from infra.store.commits import SignalsCommits


class LinkagePostgresRecorder(SignalsCommits, PostgresApplicationRecorder):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)  # committed
        if stored_events:
            self.committed()
        return ids
