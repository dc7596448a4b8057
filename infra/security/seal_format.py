"""The seal chain's byte format: what is hashed, and what a checkpoint signs.

hash_n = SHA-256(hash_{n-1} || canonical(event n)), hash_0 = 32 zero bytes, where
canonical(event n) is, in this fixed encoding (integers big-endian):

    b"LKSEAL1" | notification id (8) | originator id (16, UUID bytes) |
    originator version (8) | len(topic) (4) | topic (UTF-8) | len(state) (8) | state

Each chain row also keeps `content` = SHA-256 of the same encoding without the
notification id, so a verifier can tell an event that moved (reordered) from one
that changed. A checkpoint's Ed25519 signature is over
b"linkage-checkpoint|<k>|<notification id>|<count>|<hash hex>".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

GENESIS = bytes(32)
MAGIC = b"LKSEAL1"


@dataclass(slots=True)
class Stored:
    """A notification as the event store holds it (read-only; not frozen, as a frozen dataclass
    builds itself through object.__setattr__, a measurable cost per sealed event)."""

    id: int
    originator_id: Any
    originator_version: int
    topic: str
    state: bytes


def _body(originator_id: Any, version: int, topic: str, state: bytes) -> bytes:
    t = topic.encode()
    if type(state) is not bytes:
        state = bytes(state)  # a memoryview from PostgreSQL
    kind = type(originator_id)
    if kind is UUID:
        raw = originator_id.bytes
    elif kind is str and len(originator_id) == 36:  # canonical text, as the lean reader gives
        raw = bytes.fromhex(originator_id.replace("-", ""))
    else:
        raw = UUID(str(originator_id)).bytes
    return b"".join([
        raw, version.to_bytes(8, "big"),
        len(t).to_bytes(4, "big"), t, len(state).to_bytes(8, "big"), state,
    ])


def canonical(event: Stored) -> bytes:
    body = _body(event.originator_id, event.originator_version, event.topic, event.state)
    return MAGIC + event.id.to_bytes(8, "big") + body


def content_digest(event: Stored) -> bytes:
    body = _body(event.originator_id, event.originator_version, event.topic, event.state)
    return hashlib.sha256(MAGIC + body).digest()


def chain_hash(previous: bytes, event: Stored) -> bytes:
    return hashlib.sha256(previous + canonical(event)).digest()


def digests(previous: bytes, event: Stored) -> tuple[bytes, bytes]:
    """(content_digest(event), chain_hash(previous, event)), encoding the event once."""
    body = _body(event.originator_id, event.originator_version, event.topic, event.state)
    content = hashlib.sha256(MAGIC)
    content.update(body)
    chained = hashlib.sha256(previous)
    chained.update(MAGIC)
    chained.update(event.id.to_bytes(8, "big"))
    chained.update(body)
    return content.digest(), chained.digest()


def checkpoint_message(k: int, notification_id: int, count: int, head: bytes) -> bytes:
    return f"linkage-checkpoint|{k}|{notification_id}|{count}|{head.hex()}".encode()


def seal_digests(previous: bytes, event: Stored) -> tuple[bytes, bytes, bytes]:
    """(content digest, chain hash, Merkle leaf hash) of an event, encoding it once: the leaf
    hash is SHA-256(0x00 || canonical(event)) (`merkle.leaf_hash`, docs/AUDIT-FORMAT.md)."""
    body = _body(event.originator_id, event.originator_version, event.topic, event.state)
    head = MAGIC + event.id.to_bytes(8, "big")
    content = hashlib.sha256(MAGIC)
    content.update(body)
    chained = hashlib.sha256(previous)
    chained.update(head)
    chained.update(body)
    leaf = hashlib.sha256(b"\x00")
    leaf.update(head)
    leaf.update(body)
    return content.digest(), chained.digest(), leaf.digest()
