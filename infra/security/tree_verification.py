"""Checking the store against signed tree heads kept outside it (`linkage audit verify --witness`).

For every head, oldest first: it must be validly signed by the configured seal key; the events
stored now, hashed as leaves in notification order, must give that root after that many events
ending at that notification (else history was rewritten, or its tail removed); and the stored
tree must still hold that root at that size (else the seal tables were deleted or altered).
The first head that fails is named. Read-only: everything is read through a `SealSnapshot`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infra.security import merkle
from infra.security.merkle_store import ProofUnavailable, TreeReader
from infra.security.seal_format import GENESIS, seal_digests
from infra.security.seal_snapshot import SealSnapshot
from infra.security.tree_head import TreeHead, valid
from infra.security.verification import NoSealKey, Verified
from infra.security.witness import key_id


def check_stored_tree(snapshot: SealSnapshot, key: Ed25519PublicKey | None) -> Verified | None:
    """The store's own signed tree heads (`linkage_seal_heads`), checked as witnessed ones are:
    None when every one holds for the events stored now (or there is none)."""
    heads = TreeReader(snapshot.query).heads()
    if not heads:
        return None
    if key is None:
        raise NoSealKey(f"{len(heads)} signed tree heads cannot be checked without the seal key")
    return check_tree_heads(snapshot, key, list(enumerate(heads, 1)), "linkage_seal_heads",
                            unit="row")


def _when(head: TreeHead) -> str:
    return datetime.fromtimestamp(head.timestamp / 1000, UTC).isoformat(timespec="seconds")


def check_tree_heads(snapshot: SealSnapshot, key: Ed25519PublicKey,
                     heads: Sequence[tuple[int, TreeHead]], source: str,
                     unit: str = "line") -> Verified | None:
    """None when the store is consistent with every head; else what the first head it breaks
    says (kind `inconsistent`, or `key`/`head` for a head this key did not sign)."""
    ordered = sorted(heads, key=lambda pair: (pair[1].tree_size, pair[0]))
    if not ordered:
        return None

    def name(line: int, h: TreeHead) -> str:
        return (f"the tree head of {h.tree_size} events (notification {h.notification_id}, "
                f"signed {_when(h)}; {source} {unit} {line})")

    def bad(kind: str, n: int, what: str) -> Verified:
        return Verified(False, 0, 0, f"{kind}: {what}", n, kind)

    for line, h in ordered:
        if h.key is not None and h.key != key_id(key):
            return bad("key", h.notification_id, f"{name(line, h)} was signed by key {h.key}, "
                       f"but the configured seal key is {key_id(key)}")
        if not valid(key, h):
            return bad("head", h.notification_id, f"{name(line, h)} is not validly signed by "
                       "the configured seal key: it is forged or corrupted")

    # The events as stored now, folded into a tree; its root wherever a head was signed.
    wanted = {h.tree_size for _, h in ordered}
    roots: dict[int, tuple[bytes, int]] = {}
    frontier: list[bytes] = []
    size = last = 0
    for event in snapshot.events():
        merkle.append(frontier, size, seal_digests(GENESIS, event)[2])
        size += 1
        last = event.id
        if size in wanted:
            roots[size] = (merkle.root(frontier), event.id)
        if size >= ordered[-1][1].tree_size:
            break
    reader = TreeReader(snapshot.query)
    stored = reader.size()
    for line, h in ordered:
        what = name(line, h)
        got = roots.get(h.tree_size)
        if got is None:
            return bad("inconsistent", h.notification_id,
                       f"the store holds {size} events (to notification {last}), but {what} "
                       f"was signed over more: history after notification {last} was removed")
        root, at = got
        if (root.hex(), at) != (h.root, h.notification_id):
            return bad("inconsistent", h.notification_id,
                       f"the events stored now give root {root.hex()[:16]}… after "
                       f"{h.tree_size} events (to notification {at}), but {what} records "
                       f"{h.root[:16]}…: history up to notification {h.notification_id} was "
                       "rewritten")
        if stored < h.tree_size:
            return bad("inconsistent", h.notification_id,
                       f"the stored Merkle tree holds {stored} events, but {what} covers more: "
                       "the seal tables were deleted or cut")
        try:
            kept = merkle.tree_root(reader.subtree, h.tree_size)
        except ProofUnavailable as exc:
            return bad("inconsistent", h.notification_id, f"{exc}; {what} cannot be proved")
        if kept.hex() != h.root:
            return bad("inconsistent", h.notification_id,
                       f"the stored Merkle tree has root {kept.hex()[:16]}… at {h.tree_size} "
                       f"events, but {what} records {h.root[:16]}…: the seal tables were "
                       "altered")
    return None
