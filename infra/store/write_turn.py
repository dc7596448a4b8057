"""Turns at writing the SQLite event store, between the server and the ingest writer process.

SQLite lets one transaction write at a time; a writer that finds the lock taken waits in
SQLite's busy handler, which polls in sleeps of 1 ms growing to 100 ms. During a burst the
ingest writer process commits batch after batch, so an officer's command polled its way in
between them: it waited for the batch in flight, then for its own sleep to end, and often lost
the gap before the next batch. Both processes now take an exclusive `flock` on a file beside
the store for the length of each write transaction: a command waits at most for the batch in
flight, and the kernel wakes it the moment that batch commits, before the writer has decided
its next one. Readers (WAL) never take it. A process that does not take turns (a CLI command)
still meets the others in SQLite's busy handler, as before.

Every other write transaction on the store's file takes the same turns: `infra/store/sqldb.py`'s
`Database` (the sealer's chain, the time-travel snapshots, a CLI's writes) holds a turn around
each of its SQLite transactions. Without it, a seal or a snapshot round took SQLite's write lock
behind the turns' backs, and the command that came next slept in the busy handler: the 40-100 ms
stalls of officers' reports seen by the open-loop benchmark (BENCHMARKS.md, #17 fifth pass).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType


class WriteTurn:
    """An exclusive lock across processes, held around each write transaction (the file is
    opened for each turn: nothing to close). Within one process the holder serializes its own
    threads (the group commit's lock does)."""

    def __init__(self, store: Path) -> None:
        self.path = store.with_name(store.name + ".turn")
        self._fd = -1

    def __enter__(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        fd, self._fd = self._fd, -1
        os.close(fd)  # releases the lock

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A turn for any thread: the lock's file descriptor stays local to this block (the
        instance's `with` form keeps it on the instance, for one thread's use)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock
