"""The Merkle tree (RFC 6962): the incremental frontier equals MTH, proofs verify for every size,
and a proof of a changed leaf, a wrong index or another root does not."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.security import merkle


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962's definition, written out recursively (the reference)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.split(len(leaves))
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(n)]


def stored(hashes: list[bytes]) -> merkle.Subtree:
    """Complete nodes as the sealer stores them, built through `append`."""
    nodes: dict[tuple[int, int], bytes] = {}
    frontier: list[bytes] = []
    for i, h in enumerate(hashes):
        nodes[(0, i)] = h
        for level, index, node in merkle.append(frontier, i, h):
            nodes[(level, index)] = node
    return merkle.subtree(lambda level, index: nodes[(level, index)])


@given(st.integers(0, 300))
def test_the_frontier_root_is_rfc_6962_mth_at_every_size(n: int) -> None:
    hashes = leaves(n)
    frontier: list[bytes] = []
    for i, h in enumerate(hashes):
        merkle.append(frontier, i, h)
    assert merkle.root(frontier) == mth(hashes)
    assert merkle.unpack(merkle.pack(frontier)) == frontier
    assert len(frontier) == bin(n).count("1")


@settings(max_examples=200)
@given(st.data())
def test_inclusion_proofs_verify_and_a_changed_leaf_does_not(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 200))
    index = data.draw(st.integers(0, size - 1))
    hashes = leaves(size)
    path = merkle.inclusion_proof(stored(hashes), index, size)
    merkle.verify_inclusion(hashes[index], index, size, path, mth(hashes))
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(merkle.leaf_hash(b"changed"), index, size, path, mth(hashes))
    if size > 1:
        other = (index + 1) % size
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(hashes[index], other, size, path, mth(hashes))


@settings(max_examples=200)
@given(st.data())
def test_consistency_proofs_verify_and_a_rewritten_prefix_does_not(data: st.DataObject) -> None:
    second = data.draw(st.integers(1, 200))
    first = data.draw(st.integers(1, second))
    hashes = leaves(second)
    path = merkle.consistency_proof(stored(hashes), first, second)
    merkle.verify_consistency(first, second, mth(hashes[:first]), mth(hashes), path)
    changed = data.draw(st.integers(0, first - 1))
    rewritten = list(hashes)
    rewritten[changed] = merkle.leaf_hash(b"rewritten")
    with pytest.raises(merkle.ProofError):  # the old head against the rewritten tree's proof
        merkle.verify_consistency(first, second, mth(hashes[:first]), mth(rewritten),
                                  merkle.consistency_proof(stored(rewritten), first, second))


def test_bad_proof_requests_are_refused() -> None:
    sub = stored(leaves(4))
    with pytest.raises(ValueError, match="leaf 4 is not in a tree of 4 leaves"):
        merkle.inclusion_proof(sub, 4, 4)
    with pytest.raises(ValueError, match="0 < from <= to"):
        merkle.consistency_proof(sub, 3, 2)
    with pytest.raises(merkle.ProofError, match="outside"):
        merkle.verify_inclusion(leaves(1)[0], 5, 4, [], mth(leaves(4)))
    with pytest.raises(merkle.ProofError, match="shorter"):
        merkle.verify_inclusion(leaves(1)[0], 0, 4, [], mth(leaves(4)))
