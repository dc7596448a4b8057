"""Exporting the sealed history (JSON Lines records), and what an outsider runs to check one."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infra.security.merkle_store import TreeReader
from infra.security.seal_format import GENESIS, Stored, chain_hash, checkpoint_message
from infra.security.seal_snapshot import LAST, SealSnapshot
from infra.security.witness import Head, key_id


def export(snapshot: SealSnapshot, public_key: Ed25519PublicKey, start: int = 1,
           stop: int = LAST) -> Iterator[dict[str, Any]]:
    """JSON-ready records: a header, each sealed event in start..stop with its hashes, then the
    checkpoints in that range."""
    yield {"format": "linkage-seal-v1",
           "public_key": public_key.public_bytes(
               serialization.Encoding.PEM,
               serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
           "hash": "sha256(prev_hash || canonical(event)); Merkle leaf sha256(0x00 || "
                   "canonical(event)); see docs/AUDIT-FORMAT.md",
           "format_doc": "docs/AUDIT-FORMAT.md"}
    events = snapshot.events(start, stop)
    pending = next(events, None)
    previous = GENESIS
    for n, content, h in snapshot.chain(1, stop):  # from 1: each row's prev_hash
        while pending is not None and pending.id < n:
            pending = next(events, None)
        if pending is not None and pending.id == n:
            yield {
                "notification_id": n,
                "originator_id": str(UUID(str(pending.originator_id))),
                "originator_version": pending.originator_version,
                "topic": pending.topic,
                "state_b64": base64.b64encode(bytes(pending.state)).decode(),
                "content": content.hex(),
                "prev_hash": previous.hex(),
                "hash": h.hex(),
            }
        previous = h
    for cp in snapshot.checkpoints():
        if start <= cp.notification_id <= stop:
            yield {"checkpoint": cp.k, "notification_id": cp.notification_id, "count": cp.count,
                   "hash": cp.hash.hex(), "signature": cp.signature.hex()}
    for head in TreeReader(snapshot.query).heads():
        if start <= head.notification_id <= stop:
            yield {"tree_head": msgspec.to_builtins(head)}


def latest_head(snapshot: SealSnapshot) -> Head | None:
    """The latest signed checkpoint as a head (the witness line format), or None."""
    checkpoints = snapshot.checkpoints()
    if not checkpoints:
        return None
    cp = checkpoints[-1]
    key = serialization.load_pem_public_key(cp.public_key.encode())
    return Head(checkpoint=cp.k, notification_id=cp.notification_id, count=cp.count,
                hash=cp.hash.hex(), time=cp.created_at,
                key=key_id(key) if isinstance(key, Ed25519PublicKey) else None,
                signature=cp.signature.hex())


def verify_export(records: Iterable[dict[str, Any]]) -> int:
    """The chain part of what an outsider runs on an export (recompute every chain hash and
    checkpoint signature); events checked. tools/verify_audit.py checks the tree heads too."""
    records = list(records)
    header = records[0]
    key = serialization.load_pem_public_key(header["public_key"].encode())
    assert isinstance(key, Ed25519PublicKey)
    heads: dict[int, bytes] = {}
    previous: bytes | None = None
    checked = 0
    for rec in records[1:]:
        if "tree_head" in rec:  # the Merkle tree's: tools/verify_audit.py checks those
            continue
        if "checkpoint" in rec:
            head = bytes.fromhex(rec["hash"])
            key.verify(bytes.fromhex(rec["signature"]),
                       checkpoint_message(rec["checkpoint"], rec["notification_id"],
                                          rec["count"], head))
            if heads.get(rec["notification_id"], head) != head:
                raise ValueError(f"checkpoint {rec['checkpoint']} does not match the chain")
            continue
        prev = bytes.fromhex(rec["prev_hash"])
        if previous is not None and prev != previous:
            raise ValueError(f"notification {rec['notification_id']} does not link")
        event = Stored(rec["notification_id"], rec["originator_id"], rec["originator_version"],
                       rec["topic"], base64.b64decode(rec["state_b64"]))
        h = chain_hash(prev, event)
        if h.hex() != rec["hash"]:
            raise ValueError(f"notification {event.id} does not hash to its recorded value")
        heads[event.id] = previous = h
        checked += 1
    return checked
