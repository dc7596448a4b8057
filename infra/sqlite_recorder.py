"""eventsourcing's SQLite application recorder, plus two lean reads of the notification log.

`select_notifications` builds a Notification object and a UUID per row; the projection runner
and the sealer want the row as stored (id, originator id, version, topic, state), and at a
burst of alerts that difference is a third of reading the log.

The projection runner also reads back, milliseconds later, what this process has just written.
A stored event that carries the state it encodes (`plain_state`, as the alert ingest fast path
gives) is remembered after its transaction commits, by notification id, so the runner can take
it without a query or a JSON decode (`take_known`). A contract test checks that what it takes
equals what decoding the stored row gives.

Plugged in through eventsourcing's own `APPLICATION_RECORDER_TOPIC` setting; everything else is
the library's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

Row = tuple[int, str, int, str, bytes]  # notification id, originator id, version, topic, state
# notification id, originator id, version, topic, state as decoded JSON (to be copied)
Known = tuple[int, str, int, str, dict[str, Any]]

KNOWN_LIMIT = 20_000  # remembered states at most (a runner that fell behind reads the table)


class LinkageSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known: dict[int, tuple[str, int, str, dict[str, Any]]] = {}
        self._known_lock = threading.Lock()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super().insert_events(stored_events, **kwargs)  # committed when it returns
        if ids:
            known = [(n, s) for n, s in zip(ids, stored_events, strict=True)
                     if getattr(s, "plain_state", None) is not None]
            if known:
                with self._known_lock:
                    if len(self._known) > KNOWN_LIMIT:
                        self._known.clear()
                    for n, s in known:
                        self._known[n] = (s.originator_text, s.originator_version,  # type: ignore[attr-defined]
                                          s.topic, s.plain_state)  # type: ignore[attr-defined]
        return ids

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

    def take_known(self, start: int, limit: int) -> list[Known]:
        """The remembered notifications start, start+1, ... (as many as are held in a row, at
        most limit), forgetting them; [] when start is not held."""
        taken: list[Known] = []
        with self._known_lock:
            known = self._known
            n = start
            while len(taken) < limit:
                entry = known.pop(n, None)
                if entry is None:
                    break
                taken.append((n, *entry))
                n += 1
            if len(known) > 4 * limit:
                # Remembered just after the runner had read them from the table (a commit and
                # the runner in between): they will never be taken. Rare; swept here.
                for stale in [k for k in known if k < n]:
                    del known[stale]
        return taken

    def forget_known(self, upto: int) -> None:
        """Forget what is remembered up to a notification id (read from the table instead)."""
        with self._known_lock:
            for n in [n for n in self._known if n <= upto]:
                del self._known[n]

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
