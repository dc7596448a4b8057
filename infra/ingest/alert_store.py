"""Bulk existence check for alert ids: one query per batch instead of one per alert."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from eventsourcing.sqlite import SQLiteAggregateRecorder

from domain.alert_service import ExistingIds
from domain.application import IncidentService

_CHUNK = 500  # stays under SQLite's bound-parameter limit


def existing_ids(service: IncidentService) -> ExistingIds | None:
    """A bulk lookup for the service's recorder, or None to fall back to repository.get."""
    recorder = service.recorder
    table = getattr(recorder, "events_table_name", None)
    if table is None:
        return None
    if isinstance(recorder, SQLiteAggregateRecorder):  # LinkageSQLiteRecorder included

        def sqlite_existing(ids: Collection[UUID]) -> set[UUID]:
            found: set[UUID] = set()
            wanted = [u.hex for u in ids]
            with recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
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
