"""eventsourcing's SQLite application recorder, plus two lean reads of the notification log.

`select_notifications` builds a Notification object and a UUID per row; the projection runner
and the sealer want the row as stored (id, originator id, version, topic, state), and at a
burst of alerts that difference is a third of reading the log.

The projection runner and the sealer also read back, milliseconds later, what this process has
just written. Events are remembered after their transaction commits, by notification id: every
event for the sealer (`unsealed`: as stored), and for the runner each one that carries the state
it encodes (`known`: `plain_state`, as the alert ingest fast path gives), so the runner takes it
without a query or a JSON decode (`known.take`). Contract tests check that what each takes equals what reading
the table gives.

Concurrent writers commit together (infra/store/group_commit.py); after each such commit, once
every event of it is remembered, the recorder signals the commit (infra/store/commits.py), so
the runner that is woken finds them. Plugged in through eventsourcing's own
`APPLICATION_RECORDER_TOPIC` setting; everything else is the library's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from infra.store.commits import SignalsCommits
from infra.store.group_commit import GroupCommits

Row = tuple[int, str, int, str, bytes]  # notification id, originator id, version, topic, state

KNOWN_LIMIT = 20_000  # remembered events at most (a reader that fell behind reads the table)


class _Recent:
    """Notifications this process has just committed, by id, for one reader to take in order."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[Any, ...]] = {}
        self._lock = threading.Lock()

    def put(self, entries: list[tuple[int, tuple[Any, ...]]]) -> None:
        with self._lock:
            if len(self._entries) > KNOWN_LIMIT:
                self._entries.clear()  # nobody is taking them: the reader reads the table
            self._entries.update(entries)

    def take(self, start: int, limit: int) -> list[tuple[Any, ...]]:
        """Entries start, start+1, ... (as many as are held in a row, at most limit), forgotten
        as they are taken; [] when start is not held."""
        taken: list[tuple[Any, ...]] = []
        with self._lock:
            entries = self._entries
            n = start
            while len(taken) < limit:
                entry = entries.pop(n, None)
                if entry is None:
                    break
                taken.append((n, *entry))
                n += 1
            # Entries below n were remembered just after the reader had read them from the
            # table (a commit and the reader in between): never to be taken. They sit first in
            # insertion order once newer ones arrive; swept from the front, O(1) a take.
            while entries:
                first = next(iter(entries))
                if first >= n:
                    break
                del entries[first]
        return taken

    def forget(self, upto: int) -> None:
        """Forget entries up to a notification id (the reader read the table instead)."""
        with self._lock:
            for n in [n for n in self._entries if n <= upto]:
                del self._entries[n]

    def __len__(self) -> int:
        return len(self._entries)


class Remembered(Protocol):
    """A memory of committed notifications for one reader (`_Recent`; the sealer process's
    `Forward` in infra/security/seal_process.py sends them to another process instead)."""

    def put(self, entries: list[tuple[int, tuple[Any, ...]]]) -> None: ...

    def take(self, start: int, limit: int) -> list[tuple[Any, ...]]: ...

    def forget(self, upto: int) -> None: ...

    def __len__(self) -> int: ...


class LinkageSQLiteRecorder(GroupCommits, SignalsCommits, SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.known = _Recent()  # for the projection runner: events with their plain state
        self.unsealed: Remembered = _Recent()  # for the sealer: every event, as stored
        # Off in a process without a runner or sealer (the ingest writer): nobody would take them.
        self.remember = True
        # Off where no runner folds in this process (its child reads the table instead).
        self.remember_known = True

    def after_batch(self, committed: list[tuple[int, StoredEvent]]) -> None:
        """After each group commit (infra/store/group_commit.py): remember, then signal."""
        if self.remember:
            self.unsealed.put([(n, (s.originator_id, s.originator_version, s.topic, s.state))
                               for n, s in committed])
            known = [(n, (s.originator_text, s.originator_version,  # type: ignore[attr-defined]
                          s.topic, s.plain_state))  # type: ignore[attr-defined]
                     for n, s in committed if getattr(s, "plain_state", None) is not None
                     ] if self.remember_known else []
            if known:
                self.known.put(known)
        self.committed(len(committed))

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library inserts one row per statement to read each row's id; one executemany
        gives the same ids: inside the write transaction each new rowid is the table's largest
        plus one, so a batch's ids are the consecutive run ending at last_insert_rowid()."""
        if len(stored_events) < 2:
            return super()._insert_events(c, stored_events, **kwargs)
        c.executemany(self.insert_events_statement, [
            (s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
             s.originator_version, s.topic, s.state)
            for s in stored_events
        ])
        c.execute("SELECT last_insert_rowid()")
        last = int(c.fetchone()[0])
        return list(range(last - len(stored_events) + 1, last + 1))

    def select_notification_rows(self, start: int, limit: int) -> list[Row]:
        """Notifications with id >= start, in order, as stored rows."""
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state "
            f"FROM {self.events_table_name} WHERE rowid>=? ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (start, limit))
            rows = c.fetchall()
        # Stored as 32 hex digits; given as str(UUID) would give them, without building a UUID.
        return [(row[0], _hyphenated(row[1]), row[2], row[3], row[4]) for row in rows]


def _hyphenated(originator_id: str) -> str:
    h = originator_id
    if len(h) != 32:
        return h
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
