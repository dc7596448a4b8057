"""The sealer in a process of its own (`LINKAGE_SEAL_PROCESS`, on by default for `linkage serve`).

In the server's process the sealer's hashing and its write transactions share the GIL with the
HTTP loop and the projection runner: during a burst of alerts an officer's command waited behind
them (BENCHMARKS.md, #17 seventh pass). Here the server, while it holds the sealer's lease
(`infra/store/lease.py`), keeps one child process sealing: a fresh interpreter (spawn) that
reads the event table, seals and signs exactly as the in-process sealer does
(`Sealer.follow_step`), with the same key from configuration.

On SQLite the server's own commits (officers' commands) reach the child as they were committed:
the server recorder's memory of unsealed events (`LinkageSQLiteRecorder.unsealed`) is a `Forward`
here, which a thread of the server sends down a pipe to the child, where they fill the child
recorder's memory; the child's sealer takes them from there as the in-process sealer would
(`stored_reader`) and reads everything else from the table. So, as before, a row altered in the
table before the sealer reached it is named by `audit verify` rather than sealed as altered. What
is committed while no child runs, or more than the child keeps up with, is read from the table.

Supervision, stopping and orphans: `infra/runtime/child_process.py`; the lease holder runs the
child, and the chain's tracking row, locked in each write transaction, keeps even a second sealer
(an orphan in its last round) harmless.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from domain.application import IncidentService
from infra.runtime.child_process import ChildProcess, child_logging, follow
from infra.settings import Settings
from infra.store.sqlite_recorder import KNOWN_LIMIT, LinkageSQLiteRecorder


class Forward:
    """Stands in for the server recorder's memory of unsealed events: what the server commits is
    sent to the sealer child (by a thread of its own: the commit never waits for the pipe)."""

    def __init__(self, limit: int = KNOWN_LIMIT) -> None:
        self.limit = limit  # events waiting to be sent at most; past it they are dropped
        self._batches: collections.deque[list[tuple[int, tuple[Any, ...]]]] = collections.deque()
        self._waiting = 0
        self._conn: Connection | None = None
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self.sent = 0  # events sent to a child (for tests and curiosity)

    def attach(self, conn: Connection | None) -> None:
        """Send to this child's end of the pipe from now on (None: drop, no child runs)."""
        with self._ready:
            self._conn = conn
            self._batches.clear()
            self._waiting = 0
            if conn is not None and self._thread is None:
                self._thread = threading.Thread(target=self._send, name="linkage-seal-forward",
                                                daemon=True)
                self._thread.start()

    def put(self, entries: list[tuple[int, tuple[Any, ...]]]) -> None:
        with self._ready:
            if self._conn is None or self._waiting + len(entries) > self.limit:
                return  # the child reads these from the table
            self._batches.append(entries)
            self._waiting += len(entries)
            self._ready.notify()

    def _send(self) -> None:
        while True:
            with self._ready:
                while not self._batches:
                    self._ready.wait()
                entries, conn = self._batches.popleft(), self._conn
                self._waiting -= len(entries)
            if conn is None:
                continue
            try:
                conn.send(entries)
                self.sent += len(entries)
            except (OSError, ValueError):  # the child is gone (or its pipe closed): table reads
                with self._ready:
                    if self._conn is conn:
                        self._conn = None
                        self._batches.clear()
                        self._waiting = 0

    # The in-process sealer's side of the memory, never used while the child seals.
    def take(self, start: int, limit: int) -> list[tuple[Any, ...]]:
        return []

    def forget(self, upto: int) -> None:
        return None

    def __len__(self) -> int:
        return self._waiting


def _receive(conn: Connection, put: Callable[[list[tuple[int, tuple[Any, ...]]]], None]) -> None:
    """The child's side of the pipe: what the server committed, into the child's memory."""
    while True:
        try:
            entries = conn.recv()
        except (EOFError, OSError):
            return
        put(entries)


def locates_nothing(grid: str) -> list[str]:
    """The grid locator of a child of the server, which never locates a grid: the sealer and the
    snapshots record no command, and the ingest writer stores batches the server located."""
    raise KeyError(grid)


@contextlib.contextmanager
def child_store(settings: Settings, name: str) -> Iterator[IncidentService]:
    """What the sealer's and the snapshots' children start with: the server's log format (each
    line naming the child, tokens redacted) and the event store, from which they only read."""
    from infra.runtime.tuning import tune_process
    from infra.security.log_redaction import install as redact_tokens_in_logs

    child_logging(name, settings)
    redact_tokens_in_logs()
    service = IncidentService(locates_nothing, env=settings.eventsourcing_env())
    if isinstance(service.recorder, LinkageSQLiteRecorder):
        service.recorder.remember = False  # this process commits no events
    tune_process()
    try:
        yield service
    finally:
        service.close()


def seal_main(settings: Settings, parent: int, conn: Connection | None = None) -> None:
    """The child: follow the event log and seal it until told to stop or orphaned."""
    from infra.security.sealer import build_sealer

    with child_store(settings, "sealer") as service:
        if conn is not None and isinstance(service.recorder, LinkageSQLiteRecorder):
            # What the server commits, as it committed it, into this process's memory.
            threading.Thread(target=_receive, args=(conn, service.recorder.unsealed.put),
                             name="linkage-seal-receive", daemon=True).start()
        sealer = build_sealer(settings, service.recorder, warn=False)
        signed_at = time.monotonic()

        def step(stopped: Callable[[], bool]) -> None:
            nonlocal signed_at
            signed_at = sealer.follow_step(signed_at, settings.seal_checkpoint_seconds,
                                           stopped=stopped)

        follow("sealer", step, settings.seal_interval, parent)


def sealer_process(settings: Settings, forward: Forward | None = None) -> ChildProcess:
    """The server's side: one sealing child while the sealer's lease is held."""
    return ChildProcess("sealer", seal_main, settings, forward=forward)
