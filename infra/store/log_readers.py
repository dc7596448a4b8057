"""How the projection runner reads: the notification log after a position, and the view store
the settings name. Used where a runner is built: the server (infra/bootstrap.py) and the runner's
child process (infra/runner/runner_process.py)."""

from __future__ import annotations

from collections.abc import Callable

from domain.application import IncidentService
from infra.settings import Settings
from infra.store.sqlite_recorder import LinkageSQLiteRecorder
from infra.store.view_store import PostgresViewStore, SQLiteViewStore, ViewStore
from projections.envelope import Envelope, from_rows, from_state, from_stored

ReadNotifications = Callable[[int, int], list[Envelope]]  # (after position, limit)


def build_view_store(settings: Settings) -> ViewStore:
    if settings.store == "postgres":
        return PostgresViewStore(settings.postgres_dsn, keep=settings.history_size,
                                 schema=settings.postgres_schema)
    return SQLiteViewStore(settings.views_path, keep=settings.history_size)


def notification_reader(service: IncidentService) -> ReadNotifications:
    """Read envelopes after a position from the application's notification log."""

    recorder = service.recorder
    if isinstance(recorder, LinkageSQLiteRecorder):
        select_rows, known = recorder.select_notification_rows, recorder.known

        def read_rows(after: int, limit: int) -> list[Envelope]:
            # What this process just stored, as it stored it; otherwise the table.
            taken = known.take(after + 1, limit)
            if taken:
                return [from_state(n, oid, version, topic, dict(state))
                        for n, oid, version, topic, state in taken]
            rows = select_rows(after + 1, limit)
            if rows:
                known.forget(rows[-1][0])
            return from_rows(rows)

        return read_rows

    def read(after: int, limit: int) -> list[Envelope]:
        notifications = recorder.select_notifications(start=after + 1, limit=limit)
        return [
            from_stored(n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in notifications
        ]

    return read
