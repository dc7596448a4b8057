"""Proofs an outsider can check (docs/AUDIT-FORMAT.md, tools/verify_audit.py): inclusion of a
notification, consistency of two signed tree heads, and an incident's events each with its
inclusion proof against one signed head. Every proof reads one read-only `SealSnapshot`."""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infra.security.merkle_store import ProofUnavailable, TreeReader
from infra.security.seal_format import Stored
from infra.security.seal_snapshot import SealSnapshot
from infra.security.tree_head import TreeHead
from infra.security.witness import key_id

# The most events one incident export proves (a case's history is far shorter; the cap bounds
# the answer whatever the store holds).
MAX_INCIDENT_EVENTS = 10_000

__all__ = ["MAX_INCIDENT_EVENTS", "ProofUnavailable", "consistency", "event_record",
           "incident_bundle", "inclusion"]


def _head(head: TreeHead) -> dict[str, Any]:
    return msgspec.to_builtins(head)  # type: ignore[no-any-return]


def _key(public_pem: str, key: Ed25519PublicKey) -> dict[str, Any]:
    return {"public_key": public_pem, "key": key_id(key)}


def event_record(event: Stored) -> dict[str, Any]:
    """An event as exports carry it: what the leaf hash is computed from."""
    return {"notification_id": event.id, "originator_id": str(UUID(str(event.originator_id))),
            "originator_version": event.originator_version, "topic": event.topic,
            "state_b64": base64.b64encode(bytes(event.state)).decode()}


def inclusion(snapshot: SealSnapshot, key: Ed25519PublicKey, public_pem: str,
              notification_id: int, tree_size: int | None = None) -> dict[str, Any]:
    """The proof that the notification's sealed leaf is in a signed tree, with the event as it is
    stored now (a verifier recomputes the leaf from it: a modified event fails)."""
    index, leaf, path, head = TreeReader(snapshot.query).inclusion(notification_id, tree_size)
    stored = next(snapshot.events(notification_id, notification_id), None)
    return {"kind": "linkage-inclusion-proof", "version": 1, "notification_id": notification_id,
            "leaf_index": index, "tree_size": head.tree_size, "leaf_hash": leaf.hex(),
            "path": [p.hex() for p in path], "tree_head": _head(head),
            "event": event_record(stored) if stored is not None else None,
            **_key(public_pem, key)}


def consistency(snapshot: SealSnapshot, key: Ed25519PublicKey, public_pem: str, first: int,
                second: int) -> dict[str, Any]:
    path, old, new = TreeReader(snapshot.query).consistency(first, second)
    return {"kind": "linkage-consistency-proof", "version": 1, "first": first, "second": second,
            "path": [p.hex() for p in path], "first_head": _head(old), "second_head": _head(new),
            **_key(public_pem, key)}


def incident_bundle(snapshot: SealSnapshot, key: Ed25519PublicKey, public_pem: str,
                    originator_id: str) -> dict[str, Any]:
    """The incident's events as stored now, each with its inclusion proof against the latest
    signed tree head; events that no signed head covers yet are listed as `unproved`."""
    reader = TreeReader(snapshot.query)
    head = reader.head()
    events, unproved = [], []
    for event in snapshot.events_of(originator_id, MAX_INCIDENT_EVENTS):
        found = reader.leaf(event.id)
        if head is None or found is None or found[0] >= head.tree_size:
            unproved.append(event.id)
            continue
        index, _leaf = found
        path = reader.inclusion(event.id, head.tree_size)[2]
        events.append({"event": event_record(event), "leaf_index": index,
                       "path": [p.hex() for p in path]})
    return {"kind": "linkage-incident-proofs", "version": 1, "incident": originator_id,
            "tree_head": _head(head) if head else None, "events": events, "unproved": unproved,
            **_key(public_pem, key)}


class StoreProofs:
    """The app's `AuditProofs` port (command_center/types.py): each call reads one read-only
    snapshot of the store the settings name."""

    def __init__(self, settings: Any, key: Ed25519PublicKey, public_pem: str) -> None:
        self.settings = settings
        self.key = key
        self.public_pem = public_pem

    def inclusion(self, notification_id: int, tree_size: int | None) -> dict[str, Any]:
        with SealSnapshot.for_settings(self.settings) as snapshot:
            return inclusion(snapshot, self.key, self.public_pem, notification_id, tree_size)

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        with SealSnapshot.for_settings(self.settings) as snapshot:
            return consistency(snapshot, self.key, self.public_pem, first, second)

    def incident(self, incident_id: str) -> dict[str, Any]:
        with SealSnapshot.for_settings(self.settings) as snapshot:
            return incident_bundle(snapshot, self.key, self.public_pem, incident_id)
