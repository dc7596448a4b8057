"""Group commit for the SQLite event store: concurrent writes share one transaction and one fsync.

Every officer's command used to be its own SQLite transaction, and so its own fsync of the
write-ahead log; at 32 concurrent requests the server spent its time waiting for the disk.
Here `insert_events` is leader/follower group commit: a caller queues its events, then takes the
commit lock; whoever holds it writes *everything* queued so far in one transaction and marks each
caller's part done. A caller that finds its part done when it gets the lock returns at once.
So commands that arrive while a commit is in flight are committed together by the next one,
with no timer and no extra thread, and one caller alone commits as before.

Semantics are those of one transaction per caller:
- each caller's events go inside a SAVEPOINT; a caller whose insert breaks the store's unique
  (originator id, version) key -- a version conflict, with a row already stored or with an
  earlier caller of the same batch -- is rolled back to its savepoint and gets the
  `IntegrityError` (the HTTP 409), and the others in the batch still commit;
- a caller returns only after the COMMIT of its batch (a 2xx means committed); if the COMMIT (or
  anything else than a conflict) fails, every caller in the batch gets that error;
- a crash mid-batch leaves nothing of the batch (SQLite rolls back an uncommitted transaction),
  and nothing of it was acknowledged.

A caller that must not block (the HTTP event loop) `submit`s its events instead, with a `notify`
callable: a writer thread of the recorder commits them with whatever else is queued, and calls
`notify(parts)` once per batch with the parts of that batch that named it. The writer thread
starts on demand and ends after a second without work.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.sqlite import SQLiteCursor

log = logging.getLogger(__name__)
MAX_BATCH_EVENTS = 4096  # events per transaction at most; the rest go in the next one
WRITER_IDLE_SECONDS = 1.0  # the writer thread ends after this long without submitted work


class Part:
    """One caller's events and, once its batch is committed, their ids or its error."""

    __slots__ = ("done", "error", "events", "ids", "kwargs", "notify", "waiter")

    def __init__(self, events: Sequence[StoredEvent], kwargs: dict[str, Any],
                 notify: Notify | None = None, waiter: Any = None) -> None:
        self.events = events
        self.kwargs = kwargs
        self.notify = notify
        self.waiter = waiter  # whatever the submitter needs to find its caller again
        self.done = False
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None


# Called by the writer thread, once per batch, with that batch's parts that named it.
Notify = Callable[[list[Part]], None]


class GroupCommitStats:
    """How many transactions wrote how many callers' events (read by the benchmark and tests)."""

    __slots__ = ("batches", "largest", "parts")

    def __init__(self) -> None:
        self.batches = 0
        self.parts = 0
        self.largest = 0


class GroupCommits:
    """Mixin for an eventsourcing SQLite application recorder (before it in the MRO): its
    `insert_events` commits concurrent callers together. Subclasses may override
    `after_batch` to see every committed (notification id, stored event) pair, once per batch,
    after the COMMIT and before any caller of the batch returns."""

    datastore: Any  # the recorder's SQLiteDatastore

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: deque[Part] = deque()
        self._queue_lock = threading.Condition(threading.Lock())
        self._commit_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self.group_stats = GroupCommitStats()
        # Held around each transaction: another process's turns (infra/store/write_turn.py).
        self.turn: AbstractContextManager[object] = contextlib.nullcontext()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        part = Part(stored_events, kwargs)
        with self._queue_lock:
            self._queued.append(part)
        with self._commit_lock:
            # Nobody took it yet: commit it, with everything queued behind it (more than one
            # batch when more than MAX_BATCH_EVENTS were queued ahead of it).
            while not part.done:
                self._commit_queued()
        if part.error is not None:
            raise part.error
        return part.ids

    def submit(self, stored_events: Sequence[StoredEvent], notify: Notify, waiter: Any = None,
               **kwargs: Any) -> Part:
        """Queue events for the writer thread without waiting; once their batch is committed
        (or failed), the part has its ids (or its error) and `notify` is called with it."""
        part = Part(stored_events, kwargs, notify, waiter)
        with self._queue_lock:
            self._queued.append(part)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name="linkage-group-commit",
                                                daemon=True)
                self._writer.start()
            else:
                self._queue_lock.notify()
        return part

    def _write(self) -> None:
        """The writer thread: commits whatever is queued until nothing was for a while."""
        try:
            while True:
                with self._queue_lock:
                    if not self._queued:
                        self._queue_lock.wait(WRITER_IDLE_SECONDS)
                        if not self._queued:
                            self._writer = None
                            return
                with self._commit_lock:
                    if self._queued:  # a blocking caller may have committed it meanwhile
                        self._commit_queued()
        finally:
            with self._queue_lock:
                if self._writer is threading.current_thread():  # it died: the next submit
                    self._writer = None  # starts another

    def after_batch(self, committed: list[tuple[int, StoredEvent]]) -> None:
        """Called with the commit lock held, after each COMMIT that stored events."""

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return super()._insert_events(c, stored_events, **kwargs)  # type: ignore[misc, no-any-return]

    def _take_batch(self) -> list[Part]:
        batch: list[Part] = []
        events = 0
        with self._queue_lock:
            queued = self._queued
            while queued and (not batch or events + len(queued[0].events) <= MAX_BATCH_EVENTS):
                part = queued.popleft()
                batch.append(part)
                events += len(part.events)
        return batch

    def _commit_queued(self) -> None:
        batch = self._take_batch()
        committed: list[tuple[int, StoredEvent]] = []
        try:
            with self.turn, self.datastore.transaction(commit=True) as c:
                for part in batch:
                    c.execute("SAVEPOINT linkage_part")
                    try:
                        ids = self._insert_events(c, part.events, **part.kwargs)
                    except (sqlite3.IntegrityError, IntegrityError) as exc:
                        c.execute("ROLLBACK TO linkage_part")
                        part.error = exc if isinstance(exc, IntegrityError) else IntegrityError(exc)
                    else:
                        part.ids = ids
                    c.execute("RELEASE linkage_part")
        except Exception as exc:  # nothing of the batch is committed: each caller gets the error
            for part in batch:
                part.ids, part.error, part.done = None, exc, True
            _notify(batch)
            return
        except BaseException as exc:
            for part in batch:
                part.ids, part.error, part.done = None, exc, True
            _notify(batch)
            raise
        for part in batch:
            if part.error is None and part.ids:
                committed.extend(zip(part.ids, part.events, strict=True))
        stats = self.group_stats
        stats.batches += 1
        stats.parts += len(batch)
        stats.largest = max(stats.largest, len(batch))
        try:
            if committed:
                self.after_batch(committed)
        finally:
            for part in batch:
                part.done = True
            _notify(batch)


def _notify(batch: list[Part]) -> None:
    """Each submitter's `notify`, once, with its parts of the batch."""
    by_notify: dict[Notify, list[Part]] = {}
    for part in batch:
        if part.notify is not None:
            by_notify.setdefault(part.notify, []).append(part)
    for notify, parts in by_notify.items():
        try:
            notify(parts)
        except Exception:  # e.g. the submitter's event loop closed: nobody is waiting any more
            log.exception("could not tell %d committed callers their outcome", len(parts))
