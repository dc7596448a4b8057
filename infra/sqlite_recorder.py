"""eventsourcing's SQLite application recorder, plus a lean read of the notification log.

`select_notifications` builds a Notification object and a UUID per row; the projection runner
and the sealer want the row as stored (id, originator id text, version, topic, state), and at a
burst of alerts that difference is a third of reading the log. Plugged in through eventsourcing's
own `APPLICATION_RECORDER_TOPIC` setting; everything else is the library's.
"""

from __future__ import annotations

from eventsourcing.sqlite import SQLiteApplicationRecorder

Row = tuple[int, str, int, str, bytes]  # notification id, originator id, version, topic, state


class LinkageSQLiteRecorder(SQLiteApplicationRecorder):
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


