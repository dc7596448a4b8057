"""Issue #18, part 3, over the real CLI on SQLite and PostgreSQL: `audit verify --witness FILE`
checks the store against every signed tree head the witness (kept outside the data dir) holds,
and names the first one that a rewrite-and-reseal, a tail truncation or the deletion of the seal
tables breaks. It stays read-only."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from infra.security.tree_head import TreeHead, read_tree_heads
from infra.settings import Settings
from tests.integration.sealed_store import Store, make_history, seal, settings_for, verify

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return settings_for(request, tmp_path,
                        seal_witness=str(tmp_path / "elsewhere" / "witness.jsonl"))


def sealed(settings: Settings, incidents: int = 3) -> None:
    service = make_history(settings, incidents)
    seal(settings, service)
    service.close()


def reseal(settings: Settings) -> int:
    service = make_history(settings, incidents=0)
    try:
        return seal(settings, service)
    finally:
        service.close()


def tree_heads(settings: Settings) -> list[tuple[int, TreeHead]]:
    return read_tree_heads(Path(settings.seal_witness))


def test_a_clean_store_is_consistent_with_every_witnessed_tree_head(settings: Settings) -> None:
    sealed(settings, incidents=4)  # 12 events, heads at 4, 8, 12
    heads = tree_heads(settings)
    assert [(line, h.tree_size, h.notification_id) for line, h in heads] == [
        (2, 4, 4), (4, 8, 8), (6, 12, 12)]
    store = Store(settings)
    before = store.dump()
    code, out = verify(settings, "--witness", settings.seal_witness)
    assert code == 0, out
    assert "verified 12 events up to checkpoint 3" in out
    assert ("the tree is consistent with 3 signed tree heads from "
            f"{settings.seal_witness} (the latest: 12 events)") in out
    assert store.dump() == before  # read-only


def test_rewrite_and_reseal_with_the_data_dirs_key_names_the_first_tree_head(
    settings: Settings,
) -> None:
    sealed(settings)  # tree heads at 4 and 8
    store = Store(settings)
    store.modify(6)
    store.clear_seals()
    assert reseal(settings) == 9  # sealed again, signed again with the same key
    assert [h.tree_size for _, h in tree_heads(settings)] == [4, 8, 4, 8]
    code, out = verify(settings)
    assert code == 0, out  # inside the store the rewritten history is consistent
    code, out = verify(settings, "--witness", settings.seal_witness)
    assert code == 1, out
    assert "TAMPERED: inconsistent: the events stored now give root " in out
    assert "after 8 events (to notification 8), but the tree head of 8 events (notification 8," in out
    assert f"{settings.seal_witness} line 4) records " in out  # the first head after event 6
    assert "history up to notification 8 was rewritten" in out


def test_tail_truncation_names_the_first_tree_head_past_the_cut(settings: Settings) -> None:
    sealed(settings, incidents=4)  # tree heads at 4, 8, 12
    store = Store(settings)
    for n in range(9, 13):
        store.delete(n)
    store.clear_seals()
    assert reseal(settings) == 8
    code, out = verify(settings, "--witness", settings.seal_witness)
    assert code == 1, out
    assert ("TAMPERED: inconsistent: the store holds 8 events (to notification 8), but the tree "
            "head of 12 events (notification 12, signed ") in out
    assert f"{settings.seal_witness} line 6) was signed over more: history after notification 8 " \
           "was removed" in out


def test_deleted_seal_tables_are_named_against_the_witness(settings: Settings) -> None:
    sealed(settings)
    store = Store(settings)
    store.clear_seals()
    before = store.dump()
    code, out = verify(settings, "--witness", settings.seal_witness)
    assert code == 1, out
    assert ("TAMPERED: inconsistent: the stored Merkle tree holds 0 events, but the tree head of "
            "4 events (notification 4, signed ") in out
    assert "the seal tables were deleted or cut" in out
    assert store.dump() == before


def test_altered_tree_leaves_are_named(settings: Settings) -> None:
    sealed(settings)
    Store(settings).run("UPDATE linkage_seal_leaves SET hash = ? WHERE idx = 1",
                        (bytes(32),))
    code, out = verify(settings, "--witness", settings.seal_witness)
    assert code == 1, out
    assert "the stored Merkle tree has root " in out and "the seal tables were altered" in out


@pytest.mark.parametrize(("change", "expected"), [
    (lambda head: msgspec.structs.replace(head, tree_size=head.tree_size + 1),
     "TAMPERED: head: the tree head of 5 events"),
    (lambda head: msgspec.structs.replace(head, key="ed25519:0000000000000000"),
     "TAMPERED: key: the tree head of 4 events"),
], ids=["forged", "other-key"])
def test_a_tree_head_this_key_did_not_sign_is_refused(
    settings: Settings, tmp_path: Path, change: object, expected: str
) -> None:
    sealed(settings)
    _, head = tree_heads(settings)[0]
    path = tmp_path / "forged.jsonl"
    path.write_bytes(msgspec.json.encode(change(head)) + b"\n")  # type: ignore[operator]
    code, out = verify(settings, "--witness", str(path))
    assert code == 1 and expected in out, out


@pytest.mark.parametrize(("content", "expected"), [
    (b'{"kind":"linkage-tree-head","version":1,"tree_size":0}\n', "line 1: "),
    (b"", "is empty"),
    (b"\n\n", "is empty"),
], ids=["malformed-tree-head", "empty", "blank"])
def test_a_witness_that_is_not_signed_heads_is_a_usage_error(
    settings: Settings, tmp_path: Path, content: bytes, expected: str
) -> None:
    sealed(settings)
    path = tmp_path / "witness.jsonl"
    path.write_bytes(content)
    code, out = verify(settings, "--witness", str(path))
    assert code == 2 and expected in out and "--witness" in out, out


def test_plain_verify_checks_the_tree_heads_the_store_holds(settings: Settings) -> None:
    """Without a witness, the store's own signed tree heads must hold for its events and its
    stored tree: a leaf altered, or an event rewritten with only the chain cut back, is named."""
    sealed(settings)  # tree heads at 4 and 8
    store = Store(settings)
    store.run("UPDATE linkage_seal_leaves SET hash = ? WHERE idx = 5", (bytes(32),))
    code, out = verify(settings)
    assert code == 1, out
    assert ("TAMPERED: inconsistent: the stored Merkle tree has root " in out
            and "the tree head of 8 events (notification 8, signed " in out
            and "linkage_seal_heads row 2) records " in out), out


def test_plain_verify_names_a_rewrite_that_left_the_tree_behind(settings: Settings) -> None:
    sealed(settings)
    store = Store(settings)
    store.modify(6)
    store.unseal_from(6, checkpoints=False)  # the chain cut back and rewound; the tree kept
    store.run("DELETE FROM linkage_seal_checkpoints WHERE notification_id >= 6")
    code, out = verify(settings)
    assert code == 1, out
    assert ("TAMPERED: inconsistent: the events stored now give root " in out
            and "history up to notification 8 was rewritten" in out), out
