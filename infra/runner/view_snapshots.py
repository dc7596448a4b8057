"""Fast time travel: each center's state stored at signed tree heads, so `view?at=` folds only
the events after the nearest snapshot instead of the whole log.

A follower (a singleton, under the lease `view-snapshots`) folds the sealed log with the same
projection functions as the live runner; whenever the latest signed tree head lies at least
`every` notifications past its last snapshot, it folds up to that head and stores, for each
center whose state changed, (center, position, max_us, min_us, state): the state is the
center's view and open cases, `max_us` the latest event time folded into it so far and `min_us`
the earliest event time since that center's previous snapshot (event times in microseconds).
Each center keeps at most `keep` snapshots: past that, the one closest to its predecessor is
dropped and its interval merged into the next, so storage is bounded per center whatever the
length of the history.

Between rounds it folds on to the latest signed head and records, per center, the earliest
event time since that center's last snapshot (`linkage_view_snapshot_tails`, one row a center).

`view_at(center, at)` equals a full refold (every event of the center with time <= at, in
notification order): it starts from the last snapshot whose `max_us` <= at (every event in it is
at or before `at`), then folds, with the same filter, only the intervals after it whose `min_us`
<= at (the tail's too), and the few events after the tail. Event times need not be monotonic.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

import orjson

from infra.runtime.child_process import ChildProcess, follow
from infra.security.seal_format import Stored
from infra.security.seal_process import child_store
from infra.security.sealer import stored_reader
from infra.settings import Settings
from infra.store.sqldb import Database, Tx
from projections.cases import Case
from projections.center_view import (
    QUEUE_SIZE,
    Center,
    apply,
    fold_events,
    new_center,
    restored,
    routes_to,
)
from projections.envelope import Envelope, from_stored
from projections.patch import View
from projections.queue import OpenCases

log = logging.getLogger(__name__)

ReadStored = Callable[[int, int], Sequence[Stored]]
Query = Callable[..., list[tuple[Any, ...]]]
TRACKING = "view-snapshots"
INTERVAL = 5.0  # seconds between the follower's rounds
BATCH = 1000
NEVER = 2**62
# How a stored event's state begins (eventsourcing's transcoder puts the timestamp first).
STAMP = b'{"timestamp":{"_type_":"datetime_iso","_data_":"'


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ignore(center: str, changes: object) -> None:
    """The follower keeps states, not deltas."""


def micros(at: datetime) -> int:
    """Microseconds since 1970, exactly (a time zone is required)."""
    return (at - EPOCH) // timedelta(microseconds=1)


def _stamp(state: bytes) -> int | None:
    """A stored event's time (microseconds) read from its first bytes, without decoding it;
    None when they are not as eventsourcing's transcoder writes them."""
    if not state.startswith(STAMP):
        return None
    try:
        return micros(datetime.fromisoformat(state[len(STAMP):state.find(b'"', len(STAMP))]
                                             .decode()))
    except (ValueError, TypeError):
        return None


def _encode_view(center: Center) -> bytes:
    # Without the queue: `restored` rebuilds it from the open cases, as the view store does.
    return orjson.dumps({"view": {key: value for key, value in center.view.items()
                                  if key != "queue"}})


def _cases_at(query: Query, center: str, position: int) -> list[Case]:
    """The center's case versions that hold at `position`: the current ones (until_pos NULL)
    and those ending after it, both found through the (center, until_pos) index."""
    return [orjson.loads(bytes(state)) for (state,) in query(
        "SELECT state FROM linkage_view_snapshot_cases WHERE center = ? AND "
        "until_pos IS NULL AND since_pos <= ? UNION ALL "
        "SELECT state FROM linkage_view_snapshot_cases WHERE center = ? AND "
        "until_pos > ? AND since_pos <= ?", (center, position, center, position, position))]


def _decode(blob: bytes, queue_size: int, cases: Callable[[], list[Case]]
            ) -> tuple[Center, bool]:
    """A stored state, and whether its open cases were inline (stores from before the cases
    table); where the blob holds the view alone, `cases()` gives them (the versions stored for
    its position)."""
    data = orjson.loads(blob)
    inline = "cases" in data
    held = data["cases"] if inline else cases()
    return restored(data["view"], OpenCases(held), queue_size), inline


class ViewSnapshots:
    def __init__(self, db: Database, read: ReadStored, centers: Sequence[str], *,
                 every: int = 1000, keep: int = 1024, queue_size: int = QUEUE_SIZE,
                 heads: Database | None = None) -> None:
        self.db = db  # where the snapshots are stored
        # Where the signed tree heads are (the event store's database; `db` when None).
        self.heads = heads or db
        self.read = read
        self.centers = list(centers)
        self.every = max(1, every)
        self.keep = max(2, keep)
        self.queue_size = queue_size
        with db.ddl() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS linkage_view_snapshots (center TEXT NOT NULL, "
                       "position BIGINT NOT NULL, max_us BIGINT NOT NULL, min_us BIGINT, "
                       f"state {db.blob} NOT NULL, PRIMARY KEY (center, position))")
            tx.execute("CREATE TABLE IF NOT EXISTS linkage_view_snapshot_tracking ("
                       "name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
            tx.execute("CREATE TABLE IF NOT EXISTS linkage_view_snapshot_tails ("
                       "center TEXT PRIMARY KEY, position BIGINT NOT NULL, min_us BIGINT)")
            # Each open case's record once per version, for the snapshot positions from
            # since_pos up to (not including) until_pos (NULL: still its record).
            tx.execute("CREATE TABLE IF NOT EXISTS linkage_view_snapshot_cases ("
                       "center TEXT NOT NULL, case_id TEXT NOT NULL, since_pos BIGINT NOT NULL, "
                       f"until_pos BIGINT, state {db.blob} NOT NULL, "
                       "PRIMARY KEY (center, case_id, since_pos))")
            # The versions that hold at a position: the current ones (until_pos NULL) and those
            # ending after it, found without reading the center's older versions.
            tx.execute("CREATE INDEX IF NOT EXISTS linkage_view_snapshot_cases_until ON "
                       "linkage_view_snapshot_cases (center, until_pos, since_pos)")
        self._states: dict[str, Center] | None = None
        self._local = threading.local()
        self._max: dict[str, int] = {}
        self._min: dict[str, int | None] = {}
        self.position = 0  # folded up to (in memory)
        self.snapped = 0  # the last snapshot round
        self._changed: set[str] = set()  # centers changed since the last round
        # Per center, the case records stored as current (until_pos NULL), by case id: a round
        # stores only the cases that are not these very records.
        self._stored_cases: dict[str, dict[str, Case]] = {}

    def _new(self, center: str) -> Center:
        return new_center(center, self.queue_size)

    def _queue(self) -> int:
        return self.queue_size

    # -- taking snapshots ------------------------------------------------------------------

    def _load(self) -> dict[str, Center]:
        """The follower's states, from the stored snapshots at its tracked position."""
        states = {c: self._new(c) for c in self.centers}
        with self.db.read() as tx:
            rows = tx.execute("SELECT position FROM linkage_view_snapshot_tracking WHERE name = ?",
                              (TRACKING,))
            self.position = self.snapped = int(rows[0][0]) if rows else 0
            self._changed = set()
            for center in self.centers:
                self._max[center], self._min[center] = -NEVER, None
                found = tx.execute("SELECT max_us, state, position FROM linkage_view_snapshots "
                                   "WHERE center = ? AND position <= ? "
                                   "ORDER BY position DESC LIMIT 1",
                                   (center, self.position))
                self._stored_cases[center] = {}
                if found:
                    self._max[center] = int(found[0][0])
                    states[center], inline = _decode(
                        bytes(found[0][1]), self._queue(),
                        functools.partial(_cases_at, tx.execute, center, int(found[0][2])))
                    if not inline:  # inline: from before the cases table, none stored there yet
                        self._stored_cases[center] = {case["id"]: case
                                                      for case in states[center].cases}
        return states

    def _stored(self, start: int, stop: int) -> Iterator[Stored]:
        """The stored notifications with start <= id <= stop."""
        while start <= stop:
            batch = self.read(start, min(BATCH, stop - start + 1))
            if not batch:
                return
            for e in batch:
                if e.id > stop:
                    return
                yield e
            start = batch[-1].id + 1

    def _events(self, start: int, stop: int) -> Iterator[Envelope]:
        """Envelopes of the stored notifications with start <= id <= stop."""
        for e in self._stored(start, stop):
            yield from_stored(e.id, e.originator_id, e.originator_version, e.topic, e.state)

    def _events_of(self, center: str, limit: int, start: int, stop: int) -> Iterator[Envelope]:
        """Envelopes of the notifications start..stop that route to `center` with a time at or
        before `limit` (microseconds). An event whose bytes show it cannot match (its time,
        stored first, is later; the center's id is nowhere in it) is skipped undecoded."""
        # Printable ASCII without quotes or backslashes is written as itself in any JSON.
        plain = center.isascii() and center.isprintable() and not {'"', "\\"} & set(center)
        quoted = b'"' + center.encode() + b'"'
        for e in self._stored(start, stop):
            state = bytes(e.state)
            if plain and quoted not in state:
                continue
            at = _stamp(state)
            if at is not None and at > limit:
                continue
            event = from_stored(e.id, e.originator_id, e.originator_version, e.topic, state)
            if center not in routes_to(event):
                continue
            if at is None and micros(datetime.fromisoformat(event.at)) > limit:
                continue
            yield event

    def step(self) -> int | None:
        """Fold up to the first signed head `every` past the last snapshot round (and take one
        there), or else up to the latest signed head; the position folded to, or None."""
        if self._states is None:
            self._states = self._load()
        states = self._states
        with self.heads.read() as tx:
            snap, latest = tx.execute(
                "SELECT MIN(CASE WHEN notification_id >= ? THEN notification_id END), "
                "MAX(notification_id) FROM linkage_seal_heads", (self.snapped + self.every,))[0]
        if latest is None or int(latest) <= self.position:
            return None
        target = int(snap) if snap is not None else int(latest)
        events = self._events(self.position + 1, target)
        while chunk := list(itertools.islice(events, BATCH)):
            for event in chunk:
                at = micros(datetime.fromisoformat(event.at))
                for center in routes_to(event):
                    if center not in states:
                        continue
                    self._changed.add(center)
                    self._max[center] = max(self._max[center], at)
                    low = self._min[center]
                    self._min[center] = at if low is None else min(low, at)
            # As the runner folds (runs of alerts at once): the same states as one at a time.
            fold_events(chunk, states.get, _ignore)
        # Encoded before the write transaction: on SQLite it holds the writers' turn, which
        # officers' commands wait for. A round stores each changed center's view and only the
        # case records that changed since its last round, not all its open cases again.
        rounds: list[tuple[str, bytes, list[str], list[tuple[str, bytes]], dict[str, Case]]] = []
        for center in sorted(self._changed) if snap is not None else ():
            stored = self._stored_cases.setdefault(center, {})
            now = {case["id"]: case for case in states[center].cases}
            added = [(case_id, orjson.dumps(case)) for case_id, case in now.items()
                     if stored.get(case_id) is not case]
            ended = [case_id for case_id, case in stored.items() if now.get(case_id) is not case]
            rounds.append((center, _encode_view(states[center]), ended, added, now))
        snapped = {center for center, *_ in rounds}  # their tails start empty
        with self.db.tx() as tx:
            if snap is not None:
                for center, blob, ended, added, _ in rounds:
                    tx.execute("INSERT INTO linkage_view_snapshots (center, position, max_us, "
                               "min_us, state) VALUES (?, ?, ?, ?, ?)",
                               (center, target, self._max[center], self._min[center], blob))
                    tx.executemany("UPDATE linkage_view_snapshot_cases SET until_pos = ? WHERE "
                                   "center = ? AND case_id = ? AND until_pos IS NULL",
                                   [(target, center, case_id) for case_id in ended])
                    tx.executemany("INSERT INTO linkage_view_snapshot_cases (center, case_id, "
                                   "since_pos, until_pos, state) VALUES (?, ?, ?, NULL, ?)",
                                   [(center, case_id, target, state) for case_id, state in added])
                    self._thin(tx, center)
                tx.execute("DELETE FROM linkage_view_snapshot_tracking WHERE name = ?",
                           (TRACKING,))
                tx.execute("INSERT INTO linkage_view_snapshot_tracking VALUES (?, ?)",
                           (TRACKING, target))
            # What each center's events since its last snapshot hold, up to here: a query for
            # an earlier time skips them without reading them.
            tx.execute("DELETE FROM linkage_view_snapshot_tails")
            tx.executemany("INSERT INTO linkage_view_snapshot_tails (center, position, min_us) "
                           "VALUES (?, ?, ?)",
                           [(center, target, None if center in snapped else self._min[center])
                            for center in self.centers])
        if snap is not None:  # committed: what is stored now
            for center, _, _, _, now in rounds:
                self._stored_cases[center] = now
                self._min[center] = None
            self._changed.clear()
            self.snapped = target
        self.position = target
        return target

    def _thin(self, tx: Tx, center: str) -> None:
        rows = tx.execute("SELECT position, min_us FROM linkage_view_snapshots WHERE center = ? "
                          "ORDER BY position", (center,))
        while len(rows) > self.keep:
            # Drop the snapshot nearest its predecessor (never the newest); the next one's
            # interval then starts where the dropped one's did.
            gaps = [(rows[i][0] - (rows[i - 1][0] if i else 0), i) for i in range(len(rows) - 1)]
            _, i = min(gaps)
            position, low = rows[i]
            after, after_low = rows[i + 1]
            merged = after_low if low is None else low if after_low is None else min(low,
                                                                                  after_low)
            tx.execute("DELETE FROM linkage_view_snapshots WHERE center = ? AND position = ?",
                       (center, position))
            tx.execute("UPDATE linkage_view_snapshots SET min_us = ? WHERE center = ? AND "
                       "position = ?", (merged, center, after))
            # Case versions that held only for positions between the two kept neighbours
            # (a version starts at a round and ends at a later one) serve no snapshot now.
            tx.execute("DELETE FROM linkage_view_snapshot_cases WHERE center = ? AND "
                       "since_pos > ? AND until_pos IS NOT NULL AND until_pos <= ?",
                       (center, int(rows[i - 1][0]) if i else 0, after))
            rows = [*rows[:i], (after, merged), *rows[i + 2:]]

    def catch_up(self, stopped: Callable[[], bool] = lambda: False) -> int:
        """Fold and store until the latest signed head (or `stopped()`, checked between
        steps)."""
        rounds = 0
        while not stopped() and self.step() is not None:
            rounds += 1
        return rounds

    async def run(self, interval: float = INTERVAL, stopped: Callable[[], bool] = lambda: False
                  ) -> None:
        """Follow the signed heads until cancelled (a background task of `linkage serve` with
        LINKAGE_SNAPSHOT_PROCESS=false; else `snapshots_main` follows them in a child)."""
        while not stopped():
            await asyncio.to_thread(self.follow_step)
            await asyncio.sleep(interval)

    def follow_step(self, stopped: Callable[[], bool] = lambda: False) -> None:
        """One round of following the signed heads; a failure is logged and retried from what
        is stored."""
        try:
            self.catch_up(stopped)
        except Exception:
            self._states = None  # reload from what is stored
            log.exception("view snapshots failed; retrying")

    # -- time travel -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Query]:
        """A read that takes no write lock (SQLite: a read-only connection of this thread)."""
        if self.db.kind != "sqlite":
            with self.db.tx() as tx:
                yield tx.execute
            return
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self.db.sqlite_path is not None
            conn = self._local.conn = sqlite3.connect(
                self.db.sqlite_path.resolve().as_uri() + "?mode=ro", uri=True,
                isolation_level=None, timeout=10, check_same_thread=False)
        conn.execute("BEGIN")
        try:
            yield lambda sql, params=(): list(conn.execute(sql, tuple(params)).fetchall())
        finally:
            conn.execute("COMMIT")

    def view_at(self, center: str, at: datetime) -> View:
        """The center's view as it was at `at`: equal to a full refold."""
        limit = micros(at)
        with self._reading() as query:
            rows = query("SELECT position, max_us, min_us FROM linkage_view_snapshots "
                              "WHERE center = ? ORDER BY position", (center,))
            start = None
            for i, (_position, max_us, _low) in enumerate(rows):
                if int(max_us) <= limit:
                    start = i
            tail = query("SELECT position, min_us FROM linkage_view_snapshot_tails WHERE "
                         "center = ?", (center,))
            state = self._new(center)
            if start is not None:
                at_position = rows[start][0]
                blob = query("SELECT state FROM linkage_view_snapshots WHERE center = ? "
                                  "AND position = ?", (center, at_position))[0][0]
                state, _ = _decode(bytes(blob), self._queue(),
                                   lambda: _cases_at(query, center, at_position))
        begin = int(rows[start][0]) if start is not None else 0
        ranges: list[tuple[int, int]] = []
        previous = begin
        for position, _max, low in rows[(start + 1) if start is not None else 0:]:
            if low is not None and int(low) <= limit:
                ranges.append((previous + 1, int(position)))
            previous = int(position)
        if tail and int(tail[0][0]) >= previous:
            position, low = int(tail[0][0]), tail[0][1]
            if low is not None and int(low) <= limit:
                ranges.append((previous + 1, position))
            previous = position
        ranges.append((previous + 1, NEVER))
        for first, last in ranges:
            for event in self._events_of(center, limit, first, last):
                apply(state, event)
        return state.view


def build_view_snapshots(settings: Settings, recorder: Any, centers: Sequence[str]
                         ) -> ViewSnapshots:
    """The snapshots of a store: on SQLite in a file of their own (`snapshots.db`), so a round's
    write never holds the event store's turn (infra/store/write_turn.py), which officers'
    commands wait for; the signed heads are read from the event store."""
    return ViewSnapshots(Database.for_settings(settings, settings.snapshots_path),
                         stored_reader(recorder, memory=False), centers,
                         every=settings.view_snapshot_every, keep=settings.view_snapshot_keep,
                         heads=Database.for_settings(settings, settings.sqlite_path))


def snapshots_main(settings: Settings, parent: int, conn: Connection | None = None) -> None:
    """The child of `LINKAGE_SNAPSHOT_PROCESS` (infra/runtime/child_process.py): follow the
    signed heads and store the snapshots until told to stop or orphaned; the server's own
    `ViewSnapshots` only answers `view?at=` from what this stores."""
    from infra.loaders.jurisdiction import load_jurisdiction

    with child_store(settings, "view-snapshots") as service:
        centers = [unit.id for unit in load_jurisdiction(settings.jurisdiction).centers()]
        snapshots = build_view_snapshots(settings, service.recorder, centers)
        follow("view-snapshots", snapshots.follow_step, INTERVAL, parent)


def snapshots_process(settings: Settings) -> ChildProcess:
    """The server's side: one snapshotting child while the `view-snapshots` lease is held."""
    return ChildProcess("view-snapshots", snapshots_main, settings)
