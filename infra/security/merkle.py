"""The Merkle tree over the notification log (RFC 6962 / RFC 9162, SHA-256), pure functions.

Leaf i is the i-th sealed event (0-based, in notification order): its hash is
SHA-256(0x00 || canonical(event)) (`seal_format.canonical`), a node's is
SHA-256(0x01 || left || right). The tree of n leaves is RFC 6962's MTH(D[n]). Proofs are built
from any `Subtree` lookup (the stored nodes, or a list in a test), so nothing here does I/O; the
byte format is in docs/AUDIT-FORMAT.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()

# (start, size) -> the hash of the subtree over leaves start..start+size-1
Subtree = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not prove what it claims; the message says which check failed."""


def leaf_hash(canonical: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + canonical).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): where RFC 6962 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


# -- the compact frontier: what the sealer keeps to append leaves -----------------------------

def append(frontier: list[bytes], size: int, leaf: bytes) -> list[tuple[int, int, bytes]]:
    """Append one leaf hash to the frontier of a tree of `size` leaves, in place (the frontier
    holds the roots of the complete subtrees of the binary decomposition of size, largest
    first). Returns the complete nodes this made: (level, index, hash), level >= 1."""
    made = []
    node = leaf
    level = 0
    index = size
    while index & 1:  # the subtree left of this one has the same height: merge them
        node = node_hash(frontier.pop(), node)
        level += 1
        index >>= 1
        made.append((level, index, node))
    frontier.append(node)
    return made


def root(frontier: Sequence[bytes]) -> bytes:
    """MTH of the tree whose frontier this is."""
    if not frontier:
        return EMPTY_ROOT
    top = frontier[-1]
    for left in reversed(frontier[:-1]):
        top = node_hash(left, top)
    return top


def pack(frontier: Sequence[bytes]) -> bytes:
    return b"".join(frontier)


def unpack(blob: bytes) -> list[bytes]:
    return [blob[i:i + 32] for i in range(0, len(blob), 32)]


# -- subtrees from stored complete nodes --------------------------------------------------------

def subtree(node: Callable[[int, int], bytes]) -> Subtree:
    """A `Subtree` from a lookup of complete nodes: node(level, index) is the hash over leaves
    index*2**level .. (index+1)*2**level - 1 (level 0: the leaves). A subtree that is not
    complete (the right edge of a tree) is composed of complete ones, as MTH splits it."""

    def mth(start: int, size: int) -> bytes:
        if size & (size - 1) == 0 and start % size == 0:
            return node(size.bit_length() - 1, start // size)
        k = split(size)
        return node_hash(mth(start, k), mth(start + k, size - k))

    return mth


def tree_root(sub: Subtree, size: int) -> bytes:
    return sub(0, size) if size else EMPTY_ROOT


# -- proofs (RFC 6962 section 2.1) ----------------------------------------------------------

def inclusion_proof(sub: Subtree, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]): the audit path of leaf `index` in the tree of `size` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start = 0
    while size > 1:
        k = split(size)
        if index < k:
            path.append(sub(start + k, size - k))
            size = k
        else:
            path.append(sub(start, k))
            start, index, size = start + k, index - k, size - k
    path.reverse()  # the leaf's sibling first
    return path


def consistency_proof(sub: Subtree, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]): that the tree of `first` leaves is a prefix of the one of
    `second` leaves."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from {first} to {second} leaves: 0 < from <= to")
    path: list[bytes] = []
    start, m, n, whole = 0, first, second, True
    while m != n:
        k = split(n)
        if m <= k:
            path.append(sub(start + k, n - k))
            n = k
        else:
            path.append(sub(start, k))
            start, m, n, whole = start + k, m - k, n - k, False
    if not whole:
        path.append(sub(start, m))
    path.reverse()
    return path


# -- verifying proofs (RFC 9162 sections 2.1.3.2 and 2.1.4.2) -------------------------------

def root_from_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof of `leaf` at `index` leads to; raises if malformed."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is high")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes],
                     expected_root: bytes) -> None:
    if root_from_inclusion(leaf, index, size, path) != expected_root:
        raise ProofError(f"leaf {index} is not in the tree of {size} leaves with root "
                         f"{expected_root.hex()}: the proof leads to another root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       path: Sequence[bytes]) -> None:
    """Raises ProofError unless `path` proves the tree (first, first_root) is a prefix of the
    tree (second, second_root)."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from {first} to {second} leaves")
    if first == second:
        if path or first_root != second_root:
            raise ProofError(f"two heads of {first} leaves with different roots")
        return
    path = list(path)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    if not path:
        raise ProofError("the consistency proof is empty")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is high")
    if fr != first_root:
        raise ProofError(f"the proof does not lead to the root of the tree of {first} leaves")
    if sr != second_root:
        raise ProofError(f"the proof does not lead to the root of the tree of {second} leaves")
