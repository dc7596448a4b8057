"""The sealed history: tampering with stored events in SQLite and PostgreSQL is named by
`linkage audit verify`; an untouched store verifies; an export verifies on its own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from domain.application import IncidentService
from infra.bootstrap import build_service
from infra.cli.commands import main
from infra.loaders.jurisdiction import load_jurisdiction
from infra.security.seal_export import verify_export
from infra.security.seal_format import GENESIS, Stored, chain_hash, digests
from infra.security.sealer import Sealer, build_sealer, stored_reader
from infra.settings import Settings
from projections.envelope import from_stored

ACTOR = {"user": "officer", "role": "city_officer", "center": "130700"}
JURISDICTION = load_jurisdiction(Settings().jurisdiction)


class Store:
    """Raw access to the stored_events table, as an attacker with database access has it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pg = settings.store == "postgres"

    def _connect(self) -> Any:
        if self.pg:
            import psycopg

            conn = psycopg.connect(self.settings.postgres_dsn, autocommit=True)
            conn.execute(f"SET search_path TO {self.settings.postgres_schema}")
            return conn
        return sqlite3.connect(self.settings.sqlite_path, isolation_level=None)

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        id_col = "notification_id" if self.pg else "rowid"
        table = "linkage_events" if self.pg else "stored_events"  # eventsourcing's names
        sql = sql.replace("{id}", id_col).replace("stored_events", table)
        if self.pg:
            sql = sql.replace("?", "%s")
        conn = self._connect()
        try:
            cur = conn.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def row(self, n: int) -> tuple[Any, ...]:
        return self.run("SELECT originator_id, originator_version, topic, state "
                        "FROM stored_events WHERE {id} = ?", (n,))[0]

    def modify(self, n: int) -> None:
        state = bytes(self.row(n)[3])
        changed = state.replace(b'"category":"noise"', b'"category":"n0ise"')
        if changed == state:
            changed = state.replace(b'"user":"officer"', b'"user":"0fficer"')
        assert changed != state
        self.run("UPDATE stored_events SET state = ? WHERE {id} = ?", (changed, n))

    def delete(self, n: int) -> None:
        self.run("DELETE FROM stored_events WHERE {id} = ?", (n,))

    def swap(self, a: int, b: int) -> None:
        ra, rb = self.row(a), self.row(b)
        put = ("UPDATE stored_events SET originator_id = ?, originator_version = ?, topic = ?, "
               "state = ? WHERE {id} = ?")
        self.run("UPDATE stored_events SET originator_version = -1 WHERE {id} = ?", (a,))
        self.run("UPDATE stored_events SET originator_version = -2 WHERE {id} = ?", (b,))
        self.run(put, (*rb, a))  # a now holds b's event
        self.run(put, (*ra, b))  # b now holds a's event

    def insert(self, n: int, like: int) -> None:
        oid, _version, topic, state = self.row(like)
        cols = "notification_id, " if self.pg else "rowid, "
        self.run(f"INSERT INTO stored_events ({cols}originator_id, originator_version, topic, "
                 "state) VALUES (?, ?, ?, ?, ?)", (n, oid, 999, topic, state))


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    base = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=4)
    if request.param == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        schema = request.getfixturevalue("pg_schema")
        yield base.with_(store="postgres", postgres_dsn=dsn, postgres_schema=schema)
    else:
        yield base


def make_history(settings: Settings, incidents: int = 3) -> IncidentService:
    """Three incidents: reported, accepted, dispatched (9 events, notifications 1..9)."""
    service = build_service(settings, JURISDICTION)
    grid = JURISDICTION.grids()[0].id
    for i in range(incidents):
        incident = service.report(actor=ACTOR, grid=grid, source="hotline", category="noise",
                                  severity="routine", description=f"case {i}")
        service.act(str(incident.id), "accept", actor=ACTOR)
        service.act(str(incident.id), "dispatch", actor=ACTOR,
                    assignee={"kind": "department", "id": "water"}, due="2030-01-01T00:00:00Z")
    return service


def seal(settings: Settings, service: IncidentService) -> int:
    return build_sealer(settings, service.recorder).catch_up()


def verify(settings: Settings) -> tuple[int, str]:
    args = ["audit", "verify", "--data-dir", str(settings.data_dir), "--store", settings.store]
    if settings.postgres_schema:
        args += ["--postgres-schema", settings.postgres_schema]
    result = CliRunner().invoke(main, args, env={"LINKAGE_POSTGRES_DSN": settings.postgres_dsn,
                                                   "LINKAGE_SEAL_CHECKPOINT_EVERY": "4"})
    return result.exit_code, result.output


def test_an_untouched_store_verifies_up_to_its_last_checkpoint(settings: Settings) -> None:
    service = make_history(settings)
    assert seal(settings, service) == 9
    service.close()
    code, out = verify(settings)
    assert code == 0, out
    assert "verified 9 events up to checkpoint 2" in out


@pytest.mark.parametrize(("tamper", "expected"), [
    (lambda s: s.modify(4), "modified: notification 4 "),
    (lambda s: s.delete(5), "deleted: notification 5 "),
    (lambda s: s.swap(3, 6), "reordered: notification 3 holds the event sealed as notification 6"),
])
def test_audit_verify_names_the_first_tampered_notification(
    settings: Settings, tamper: Any, expected: str
) -> None:
    service = make_history(settings)
    seal(settings, service)
    service.close()
    tamper(Store(settings))
    code, out = verify(settings)
    assert code == 1
    assert expected in out


def test_an_event_inserted_into_a_gap_after_sealing_is_named(settings: Settings) -> None:
    make_history(settings).close()
    store = Store(settings)
    store.delete(5)  # a gap, as a rolled-back transaction leaves in PostgreSQL
    # A sealer that reads the table (the writing process would seal notification 5 from memory,
    # as it committed it, and the deletion would show as such).
    service = build_service(settings, JURISDICTION)
    seal(settings, service)
    service.close()
    store.insert(5, like=4)
    code, out = verify(settings)
    assert code == 1
    assert "inserted: notification 5 " in out


def test_rewriting_the_chain_rows_too_is_caught_by_the_signed_checkpoint(tmp_path: Path) -> None:
    settings = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=4)
    service = make_history(settings)
    sealer = build_sealer(settings, service.recorder)
    sealer.catch_up()
    Store(settings).modify(2)
    # The attacker recomputes every chain row after the edit so that the chain links again.
    events = {e.id: e for e in sealer.events(9)}
    rows = sealer.chain()
    previous = rows[0][2]
    conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    for n, _content, _ in rows[1:]:
        previous = chain_hash(previous, events[n])
        conn.execute("UPDATE linkage_seal_chain SET hash = ? WHERE notification_id = ?",
                     (previous, n))
    conn.close()
    result = sealer.verify()
    assert not result.ok
    assert result.kind == "checkpoint" and result.notification == 4
    assert "signed checkpoint 1" in result.message
    service.close()


def test_an_export_carries_the_hashes_an_outsider_needs(settings: Settings, tmp_path: Path) -> None:
    service = make_history(settings)
    seal(settings, service)
    service.close()
    out = tmp_path / "export.jsonl"
    args = ["audit", "export", "--from", "3", "--to", "8", "-o", str(out),
            "--data-dir", str(settings.data_dir), "--store", settings.store]
    if settings.postgres_schema:
        args += ["--postgres-schema", settings.postgres_schema]
    result = CliRunner().invoke(main, args, env={"LINKAGE_POSTGRES_DSN": settings.postgres_dsn,
                                                   "LINKAGE_SEAL_CHECKPOINT_EVERY": "4"})
    assert result.exit_code == 0, result.output
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["notification_id"] for r in records[1:7]] == [3, 4, 5, 6, 7, 8]
    assert [r["checkpoint"] for r in records if "checkpoint" in r] == [1, 2]
    assert verify_export(records) == 6
    records[2]["state_b64"] = records[3]["state_b64"]
    with pytest.raises(ValueError, match="notification 4"):
        verify_export(records)


def test_an_export_can_be_bounded_by_time(tmp_path: Path) -> None:
    settings = Settings().with_(data_dir=tmp_path / "data")
    service = make_history(settings, incidents=1)
    (second,) = service.recorder.select_notifications(start=2, limit=1)
    middle = from_stored(second.id, second.originator_id, second.originator_version,
                         second.topic, second.state).at
    seal(settings, service)
    service.close()
    out = tmp_path / "export.jsonl"
    result = CliRunner().invoke(main, ["audit", "export", "--from", middle,
                                       "-o", str(out), "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    ids = [orjson.loads(line).get("notification_id") for line in out.read_bytes().splitlines()[1:]]
    assert ids[:2] == [2, 3]
    bad = CliRunner().invoke(main, ["audit", "export", "--to", "yesterday",
                                    "--data-dir", str(settings.data_dir)])
    assert bad.exit_code == 2 and "neither a notification id nor an ISO 8601 time" in bad.output


def test_a_quiet_store_gets_its_head_signed_on_demand(tmp_path: Path) -> None:
    settings = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=1000)
    service = make_history(settings, incidents=1)
    sealer = build_sealer(settings, service.recorder)
    sealer.catch_up()
    before = sealer.verify()
    assert before.ok and before.checkpoint == 0
    assert "3 later events are chained but not yet signed" in before.message
    assert sealer.checkpoint_now() == 1
    assert sealer.checkpoint_now() is None  # nothing new to sign
    after = sealer.verify()
    assert after.message == "verified 3 events up to checkpoint 1"
    service.close()


def test_a_row_changed_before_sealing_shows_when_its_writer_seals(tmp_path: Path) -> None:
    """The process that wrote an event seals it as it committed it, from memory: a row changed
    in the table before the sealer got to it is named by `audit verify`, not sealed as changed."""
    settings = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=4)
    service = make_history(settings)
    Store(settings).modify(4)
    assert seal(settings, service) == 9
    service.close()
    code, out = verify(settings)
    assert code == 1 and "modified: notification 4 " in out


def test_the_lean_sqlite_read_hashes_as_the_library_read(settings: Settings) -> None:
    """The sealer takes what its process just stored from memory, else reads SQLite rows directly
    (LinkageSQLiteRecorder); every digest must equal the one from eventsourcing's own
    Notification objects, so any of these reads extends one chain."""
    service = make_history(settings)
    read = stored_reader(service.recorder)
    remembered = read(1, 100)  # on SQLite: from memory
    table = read(1, 100)  # taken once: now the rows
    library = [Stored(n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))
               for n in service.recorder.select_notifications(start=1, limit=100)]
    service.close()
    assert len(remembered) == len(table) == len(library) == 9
    for lean in (remembered, table):
        head_a = head_b = GENESIS
        for a, b in zip(lean, library, strict=True):
            (content_a, head_a), (content_b, head_b) = digests(head_a, a), digests(head_b, b)
            assert (content_a, head_a) == (content_b, head_b)
            assert str(a.originator_id) == str(b.originator_id)


def test_verify_reads_the_table_when_this_process_remembers_only_part_of_it(tmp_path: Path) -> None:
    """This process stored 1..9 (remembered for its sealer); another process stored 10..18 and
    sealed everything. Verifying here reads the table, all of it: no false alarm. (Found in
    review: a short read from memory once ended the walk early and reported 10 as deleted.)"""
    settings = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=4)
    here = make_history(settings)  # remembered, not yet sealed
    other = make_history(settings)
    seal(settings, other)
    other.close()
    sealer = build_sealer(settings, here.recorder)
    assert [e.id for e in sealer.events(2**62)] == list(range(1, 19))
    result = sealer.verify()
    assert result.ok, result.message
    # A sealer built on a reader that serves memory first still walks the whole table.
    direct = Sealer(stored_reader(here.recorder), sealer.db, sealer.key)
    assert [e.id for e in direct.events(2**62)] == list(range(1, 19))
    here.close()
