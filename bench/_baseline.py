"""The baseline for the command benchmark: plain eventsourcing, one trivial event per command.

It lives in the same SQLite file as the Linkage event store but in its own events table,
so its notifications never enter the log the embedded runner follows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

BASELINE_TABLE = "bench_baseline_events"


class BaselineRecorder(SQLiteApplicationRecorder):
    """eventsourcing's own SQLite application recorder, on a separate table."""

    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, events_table_name=BASELINE_TABLE)


class Ping(Aggregate):
    """A trivial aggregate: creating it is its one event."""

    def __init__(self, n: int) -> None:
        self.n = n


class BaselineApp(Application[Any]):
    name = "BenchBaseline"


def baseline_app(sqlite_path: Path) -> BaselineApp:
    return BaselineApp(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(sqlite_path),
            "SQLITE_LOCK_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": f"{BaselineRecorder.__module__}:BaselineRecorder",
        }
    )


def baseline_command(app: BaselineApp, n: int) -> None:
    app.save(Ping(n))
