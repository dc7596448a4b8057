"""Reading alerts back from the event store (the `StoredAlerts` port): bulk existence check
(one query per batch instead of one per alert), loading, and the Raised events in order."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.sqlite import SQLiteAggregateRecorder

from domain.application import IncidentService
from domain.camera_alert import TOPIC, CameraAlert

# (alert ids) -> the ones already in the event store
ExistingIds = Callable[[Collection[UUID]], set[UUID]]

_CHUNK = 500  # stays under SQLite's bound-parameter limit
RAISED = f"{TOPIC}.Raised"


def existing_ids(service: IncidentService) -> ExistingIds | None:
    """A bulk lookup for the service's recorder, or None when it has no table to query."""
    recorder = service.recorder
    table = getattr(recorder, "events_table_name", None)
    if table is None:
        return None
    if isinstance(recorder, SQLiteAggregateRecorder):  # LinkageSQLiteRecorder included

        def sqlite_existing(ids: Collection[UUID]) -> set[UUID]:
            found: set[UUID] = set()
            wanted = [u.hex for u in ids]
            with recorder.datastore.transaction(commit=False) as cursor:
                for i in range(0, len(wanted), _CHUNK):
                    chunk = wanted[i : i + _CHUNK]
                    cursor.execute(
                        f"SELECT DISTINCT originator_id FROM {table} "
                        f"WHERE originator_id IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                    found.update(UUID(row["originator_id"]) for row in cursor.fetchall())
            return found

        return sqlite_existing
    if type(recorder).__module__ == "eventsourcing.postgres":
        from psycopg.sql import SQL, Identifier

        schema = recorder.datastore.schema  # type: ignore[attr-defined]
        statement = SQL("SELECT DISTINCT originator_id FROM {}.{} WHERE originator_id = ANY(%s)").format(
            Identifier(schema), Identifier(table))

        def postgres_existing(ids: Collection[UUID]) -> set[UUID]:
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:  # type: ignore[attr-defined]
                cursor.execute(statement, [list(ids)])
                return {UUID(str(row["originator_id"])) for row in cursor.fetchall()}

        return postgres_existing
    return None


class RecorderAlerts:
    """`StoredAlerts` on the incident service's event store."""

    def __init__(self, service: IncidentService) -> None:
        self.service = service
        self._existing = existing_ids(service)

    def existing(self, ids: Collection[UUID]) -> set[UUID]:
        if self._existing is not None:
            return self._existing(ids)
        found = set()  # a store without a table (in memory): one lookup per alert
        for uuid in ids:
            try:
                self.service.repository.get(uuid)
            except AggregateNotFoundError:
                continue
            found.add(uuid)
        return found

    def load(self, alert_id: UUID) -> CameraAlert:
        alert: CameraAlert = self.service.repository.get(alert_id)
        return alert

    def raised_from(self, position: int, limit: int) -> list[tuple[int, Any]]:
        mapper = self.service.mapper
        page = self.service.recorder.select_notifications(start=position, limit=limit,
                                                          topics=[RAISED])
        return [(n.id, mapper.to_domain_event(n)) for n in page]
