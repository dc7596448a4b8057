"""The sealed history: tampering with stored events in SQLite and PostgreSQL is named by
`linkage audit verify`; an untouched store verifies; an export verifies on its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from infra.bootstrap import build_service
from infra.cli.commands import main
from infra.security.seal_export import verify_export
from infra.security.seal_format import GENESIS, Stored, chain_hash, digests
from infra.security.sealer import Sealer, build_sealer, stored_reader
from infra.settings import Settings
from projections.envelope import from_stored
from tests.integration.sealed_store import (
    JURISDICTION,
    Store,
    make_history,
    seal,
    seal_key_path,
    settings_for,
    verify,
)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return settings_for(request, tmp_path)


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
                                                   "LINKAGE_SEAL_CHECKPOINT_EVERY": "4",
                                                   "LINKAGE_SEAL_KEY": seal_key_path(settings)})
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


def test_a_batch_sealed_by_another_sealer_while_one_computed_it_is_written_once(
    settings: Settings,
) -> None:
    """A sealer computes its batch (chain, leaves, signatures) before its write transaction and
    writes only if nothing moved meanwhile: when another sealer (another hub) seals the same
    events first, the late one writes nothing and the store verifies."""
    service = make_history(settings)
    try:
        first, second = build_sealer(settings, service.recorder), build_sealer(
            settings, service.recorder)
        read = first.read
        raced: list[int] = []

        def read_then_lose(start: int, limit: int) -> list[Stored]:
            events = read(start, limit)
            if not raced:
                raced.append(second.seal_batch())  # the other hub seals these meanwhile
            return events

        first.read = read_then_lose
        assert first.seal_batch() == 0  # found the chain moved: wrote nothing
        assert raced == [9]
        assert first.seal_batch() == 0  # nothing left to seal
        assert [n for n, _, _ in first.chain()] == list(range(1, 10))
    finally:
        service.close()
    code, out = verify(settings)
    assert code == 0, out
    assert "verified 9 events" in out
