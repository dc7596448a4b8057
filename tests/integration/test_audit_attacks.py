"""Issue #11, rows 1-2, reproduced over the real CLI on SQLite and PostgreSQL: `audit verify` is
read-only, so history rewritten and stripped of its seals is reported unsealed, not re-sealed;
a chain that was cut, rewound or restarted is named; heads kept outside the data dir (the
witness file, an exported head) name a truncation or a rewrite that left the store consistent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.bootstrap import build_service
from infra.security.seal_format import GENESIS, checkpoint_message
from infra.security.sealer import build_sealer
from infra.security.witness import Head, encode, key_id
from infra.settings import Settings
from tests.integration.sealed_store import (
    JURISDICTION,
    Store,
    audit,
    make_history,
    seal,
    settings_for,
    verify,
)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return settings_for(request, tmp_path,
                        seal_witness=str(tmp_path / "elsewhere" / "witness.jsonl"))


def sealed_history(settings: Settings, incidents: int = 3) -> None:
    """3 events an incident, sealed as `linkage serve` seals them: checkpoints every 4."""
    service = make_history(settings, incidents)
    seal(settings, service)
    service.close()


def reseal(settings: Settings) -> int:
    """What the attacker lets a running server do next: seal whatever is unsealed."""
    service = build_service(settings, JURISDICTION)
    try:
        return seal(settings, service)
    finally:
        service.close()


def exported_head(settings: Settings, tmp_path: Path) -> str:
    code, out = audit(settings, "export-head")
    assert code == 0, out
    path = tmp_path / "elsewhere" / "head.json"
    path.write_text(out)
    return str(path)


def test_verify_and_export_write_nothing_on_a_store_with_an_unsealed_tail(
    settings: Settings, tmp_path: Path
) -> None:
    sealed_history(settings)
    make_history(settings, incidents=1).close()  # notifications 10..12, not sealed
    store = Store(settings)
    before = store.dump()
    assert len(before["stored_events"]) == 12 and len(before["linkage_seal_chain"]) == 9
    outcomes = [verify(settings), verify(settings, "--strict"),
                verify(settings, "--expect-head", settings.seal_witness)]
    assert audit(settings, "export", "-o", str(tmp_path / "export.jsonl"))[0] == 0
    assert audit(settings, "export-head")[0] == 0
    assert store.dump() == before  # no chain row, checkpoint, tracking, audit record or table
    (code, out), (strict, strict_out), (witnessed, witnessed_out) = outcomes
    assert code == 0, out
    assert "verified 9 events up to checkpoint 2" in out
    assert "unsealed: 3 events (notifications 10..12)" in out
    assert strict == 3 and "unsealed: 3 events (notifications 10..12)" in strict_out
    assert witnessed == 0, witnessed_out
    assert "consistent with 2 signed heads" in witnessed_out


def test_verify_reads_a_sqlite_store_while_a_writer_holds_its_write_lock(tmp_path: Path) -> None:
    """Read-only: no write lock is taken (before, `verify` sealed and recorded, so it waited for
    this lock and failed after the busy timeout)."""
    settings = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=4)
    sealed_history(settings)
    writer = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        code, out = verify(settings)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert code == 0 and "verified 9 events up to checkpoint 2" in out, out


def test_a_rewritten_event_with_every_seal_deleted_does_not_pass_silently(
    settings: Settings, tmp_path: Path
) -> None:
    """Row 1: alter an event, delete the rows of the three seal tables, verify."""
    sealed_history(settings)
    head = exported_head(settings, tmp_path)  # checkpoint 2, notification 8
    store = Store(settings)
    store.modify(4)
    store.clear_seals()

    code, out = verify(settings)
    assert code == 0, out
    assert "verified 0 events" in out and "unsealed: 9 events (notifications 1..9)" in out
    code, out = verify(settings, "--strict")
    assert code == 3 and "unsealed: 9 events (notifications 1..9)" in out
    code, out = verify(settings, "--expect-head", settings.seal_witness)
    assert code == 1
    assert ("TAMPERED: truncated: the chain is empty, but the head of checkpoint 1 at "
            "notification 4 (4 events; " in out)
    assert store.dump()["linkage_seal_chain"] == []  # verify sealed nothing

    # A running server seals the rewritten history again: the new chain links and its new
    # checkpoints are signed with the same key (and appended to the witness after the old ones).
    assert reseal(settings) == 9
    code, out = verify(settings, "--expect-head", head)
    assert code == 1 and "TAMPERED: rewritten: the chain at notification 8 hashes to " in out
    assert f"but the head of checkpoint 2 at notification 8 (8 events; {head} line 1)" in out
    code, out = verify(settings, "--expect-head", settings.seal_witness)
    assert code == 1 and "TAMPERED: rewritten: the chain at notification 4 hashes to " in out
    assert "line 1) recorded" in out


def test_seals_deleted_from_an_event_on_with_tracking_rewound_are_named(
    settings: Settings,
) -> None:
    """Row 1, partly: delete the seal rows from the altered event on and rewind tracking."""
    sealed_history(settings)
    store = Store(settings)
    store.modify(6)
    store.unseal_from(6)  # chain 1..5, checkpoint 1, tracking at 5

    code, out = verify(settings)
    assert code == 0, out
    assert "verified 5 events up to checkpoint 1" in out
    assert "unsealed: 4 events (notifications 6..9)" in out
    assert verify(settings, "--strict")[0] == 3
    code, out = verify(settings, "--expect-head", settings.seal_witness)
    assert code == 1
    assert ("TAMPERED: truncated: the chain ends at notification 5 (5 events), but the head of "
            "checkpoint 2 at notification 8 (8 events; " in out)

    assert reseal(settings) == 4
    code, out = verify(settings, "--expect-head", settings.seal_witness)
    assert code == 1 and "TAMPERED: rewritten: the chain at notification 8 " in out


@pytest.mark.parametrize(("cut", "expected"), [
    (lambda store: store.track(5, 5, store.chain_hash(5)),
     "TAMPERED: rewound: the sealer's tracking was rewound to notification 5 (5 events), but "
     "the chain ends at notification 9 (9 events)"),
    (lambda store: store.unseal_from(6, checkpoints=False),
     "TAMPERED: truncated: the chain ends at notification 5 (5 events), but signed checkpoint 2 "
     "at notification 8 (8 events) covers more"),
    (lambda store: store.run("DELETE FROM linkage_seal_checkpoints WHERE k = 1"),
     "TAMPERED: checkpoint: signed checkpoint 1 is missing (the next one is 2)"),
    (lambda store: store.run("DELETE FROM linkage_seal_tracking"),
     "TAMPERED: tracking: the chain ends at notification 9 (9 events), but the sealer's "
     "tracking row is missing"),
], ids=["tracking-rewound", "chain-shorter-than-checkpoint", "checkpoint-deleted",
        "tracking-deleted"])
def test_a_chain_cut_or_rewound_inside_the_store_is_tampered(
    settings: Settings, cut: object, expected: str
) -> None:
    sealed_history(settings)
    cut(Store(settings))  # type: ignore[operator]
    code, out = verify(settings)
    assert code == 1
    assert expected in out


def test_a_chain_restarted_from_a_later_point_is_tampered(settings: Settings) -> None:
    """Every seal deleted, tracking set to notification 5, the rest sealed again from there."""
    sealed_history(settings)
    store = Store(settings)
    store.clear_seals()
    store.run("INSERT INTO linkage_seal_tracking VALUES ('sealer', 5, 0, ?)", (GENESIS,))
    assert reseal(settings) == 4
    code, out = verify(settings)
    assert code == 1
    assert ("TAMPERED: restarted: the seal chain starts at notification 6, but notification 1 "
            "before it is not sealed" in out)


def test_tail_truncation_is_named_against_an_exported_head_and_the_witness(
    settings: Settings, tmp_path: Path
) -> None:
    """Row 2: delete the last events and their chain and checkpoint rows, set tracking to the
    last remaining row."""
    sealed_history(settings, incidents=4)  # 1..12, checkpoints at 4, 8, 12
    head = exported_head(settings, tmp_path)  # checkpoint 3, notification 12
    store = Store(settings)
    for n in range(9, 13):
        store.delete(n)
    store.unseal_from(9)

    code, out = verify(settings)
    assert code == 0 and "verified 8 events up to checkpoint 2" in out, out
    assert "unsealed" not in out  # inside the store the cut is seamless
    code, out = verify(settings, "--expect-head", head)
    assert code == 1
    assert ("TAMPERED: truncated: the chain ends at notification 8 (8 events), but the head of "
            f"checkpoint 3 at notification 12 (12 events; {head} line 1) was signed after it"
            in out)
    code, out = verify(settings, "--expect-head", settings.seal_witness)
    assert code == 1  # line 5: each checkpoint's line is followed by its tree head's
    assert ("TAMPERED: truncated: the chain ends at notification 8 (8 events), but the head of "
            f"checkpoint 3 at notification 12 (12 events; {settings.seal_witness} line 5)" in out)


def test_a_clean_history_passes_against_its_witness_and_its_exported_head(
    settings: Settings, tmp_path: Path
) -> None:
    sealed_history(settings)  # checkpoints 1, 2
    service = make_history(settings, incidents=2)  # 10..15
    sealer = build_sealer(settings, service.recorder)
    assert sealer.catch_up() == 6  # checkpoint 3 at 12
    assert sealer.checkpoint_now() == 4  # at 15: a quiet store's head, witnessed as well
    service.close()
    make_history(settings, incidents=1).close()  # 16..18, not sealed yet

    lines = seal_head_lines(settings)
    heads = [msgspec.json.decode(line, type=Head) for line in lines]
    assert [(h.kind, h.version, h.checkpoint, h.notification_id, h.count) for h in heads] == [
        ("linkage-seal-head", 1, 1, 4, 4), ("linkage-seal-head", 1, 2, 8, 8),
        ("linkage-seal-head", 1, 3, 12, 12), ("linkage-seal-head", 1, 4, 15, 15)]
    assert {h.key for h in heads} == {sealer.key_id}
    code, out = verify(settings, "--expect-head", settings.seal_witness)
    assert code == 0, out
    assert "verified 15 events up to checkpoint 4; consistent with 4 signed heads" in out
    assert "unsealed: 3 events (notifications 16..18)" in out
    head = exported_head(settings, tmp_path)
    assert msgspec.json.decode(Path(head).read_bytes(), type=Head) == heads[-1]
    code, out = verify(settings, "--expect-head", head)
    assert code == 0 and "consistent with 1 signed heads" in out, out


def seal_head_lines(settings: Settings) -> list[bytes]:
    """The checkpoint heads' lines of the witness (its tree heads' are checked by `--witness`)."""
    lines = Path(settings.seal_witness).read_bytes().splitlines()
    return [line for line in lines if b'"kind":"linkage-seal-head"' in line]


def _signed(key: Ed25519PrivateKey, k: int, n: int, count: int, head: bytes) -> Head:
    return Head(checkpoint=k, notification_id=n, count=count, hash=head.hex(),
                key=key_id(key.public_key()),
                signature=key.sign(checkpoint_message(k, n, count, head)).hex())


@pytest.mark.parametrize(("content", "code", "expected"), [
    (b"", 2, "is empty; expected a signed head"),
    (b"missing", 2, "cannot read"),
    (b'{"checkpoint": 1}\nnot json\n', 2, "line 1: Object missing required field `notification_id`"),
    (b"GOOD\nnot json\n", 2, "line 2: JSON is malformed"),
    (b'{"kind":"linkage-sth","version":2,"tree_size":8}\n', 2,
     "kind 'linkage-sth' version 2 is not a format this linkage reads"),
    (b"GOOD\nGOOD", 0, "consistent with 2 signed heads"),
    (b"OTHER-KEY\n", 1, "TAMPERED: key: the head of checkpoint 2 at notification 8"),
    (b"FORGED\n", 1, "is not validly signed by the configured seal key"),
], ids=["empty", "missing", "missing-field", "malformed-line", "future-format", "no-final-newline",
        "other-key", "forged-signature"])
def test_a_head_file_that_is_not_signed_heads_of_this_store_is_refused(
    settings: Settings, tmp_path: Path, content: bytes, code: int, expected: str
) -> None:
    sealed_history(settings)
    store = Store(settings)
    true = _signed(Ed25519PrivateKey.generate(), 2, 8, 8, store.chain_hash(8))
    good = seal_head_lines(settings)[1]
    other = encode(true).strip()
    forged = encode(msgspec.structs.replace(
        msgspec.json.decode(good, type=Head), count=7)).strip()
    path = tmp_path / "heads.jsonl"
    if content != b"missing":
        path.write_bytes(content.replace(b"GOOD", good).replace(b"OTHER-KEY", other)
                         .replace(b"FORGED", forged))
    result, out = verify(settings, "--expect-head", str(path))
    assert result == code, out
    assert expected in out
    if code == 2:
        assert "--expect-head" in out


def test_verify_on_a_data_dir_without_a_store_creates_nothing(tmp_path: Path) -> None:
    settings = Settings().with_(data_dir=tmp_path / "nothing-here")
    code, out = verify(settings)
    assert code == 1 and f"no event store at {settings.sqlite_path}" in out
    assert not settings.data_dir.exists()


def test_checkpoints_without_the_seal_key_cannot_be_verified(tmp_path: Path) -> None:
    settings = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=4)
    sealed_history(settings)
    (settings.data_dir / "seal_ed25519.pem").unlink()
    code, out = verify(settings)
    assert code == 1 and "signed checkpoint 1 cannot be checked without the seal key" in out
    assert "no seal key at" in out
    assert not (settings.data_dir / "seal_ed25519.pem").exists()  # not made up on the spot


def test_export_head_of_a_store_without_checkpoints_says_so(tmp_path: Path) -> None:
    settings = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=100)
    sealed_history(settings)
    code, out = audit(settings, "export-head")
    assert code == 1 and "no signed checkpoint yet" in out
