"""Signed tree heads of the Merkle tree (docs/AUDIT-FORMAT.md), as witness lines and in exports.

A head signs, with Ed25519, the 62 bytes

    b"LKSTH1" | tree size (8) | last notification id (8) | timestamp, ms since 1970 (8) | root (32)

(integers big-endian). As a JSON line (the witness file, `linkage audit export-head --tree`, the
incident export), in this key order:

    {"kind":"linkage-tree-head","version":1,"tree_size":S,"notification_id":N,"timestamp":T,
     "root":"<64 hex>","key":"<key id>","signature":"<128 hex>"}

`key` is informational (the verifier is given the public key). The outbound webhooks of kind
`tree_head_signed` send each head as `publish` gives it: the line without its newline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.security.witness import HeadFileError, key_id

log = logging.getLogger(__name__)

KIND = "linkage-tree-head"
VERSION = 1
MAGIC = b"LKSTH1"

Count = Annotated[int, msgspec.Meta(ge=0)]
Hex32 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class TreeHead(msgspec.Struct, frozen=True, kw_only=True):
    """The root of the tree of the first `tree_size` sealed events, signed at `timestamp`."""

    kind: str = KIND
    version: int = VERSION
    tree_size: Annotated[int, msgspec.Meta(ge=1)]
    notification_id: Annotated[int, msgspec.Meta(ge=1)]
    timestamp: Count
    root: Hex32
    key: str | None = None
    signature: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{128}$")]


def message(tree_size: int, notification_id: int, timestamp: int, root: bytes) -> bytes:
    """The bytes a tree head's signature covers."""
    return (MAGIC + tree_size.to_bytes(8, "big") + notification_id.to_bytes(8, "big")
            + timestamp.to_bytes(8, "big") + root)


def sign(key: Ed25519PrivateKey, tree_size: int, notification_id: int, timestamp: int,
         root: bytes) -> TreeHead:
    signature = key.sign(message(tree_size, notification_id, timestamp, root))
    return TreeHead(tree_size=tree_size, notification_id=notification_id, timestamp=timestamp,
                    root=root.hex(), key=key_id(key.public_key()), signature=signature.hex())


def valid(key: Ed25519PublicKey, head: TreeHead) -> bool:
    try:
        key.verify(bytes.fromhex(head.signature),
                   message(head.tree_size, head.notification_id, head.timestamp,
                           bytes.fromhex(head.root)))
    except InvalidSignature:
        return False
    return True


def encode(head: TreeHead) -> bytes:
    return msgspec.json.encode(head) + b"\n"


class _Kind(msgspec.Struct):
    kind: str = ""


def read_tree_heads(path: Path) -> list[tuple[int, TreeHead]]:
    """The tree heads of a witness file (JSON Lines; lines of other kinds are skipped), each
    with its line number; a malformed tree-head line is an error naming it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HeadFileError(f"cannot read {path}: {exc.strerror}") from None
    heads = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            kind = msgspec.json.decode(line, type=_Kind).kind
        except msgspec.MsgspecError:
            continue  # not ours to judge: read_heads names malformed lines
        if kind != KIND:
            continue
        try:
            heads.append((number, msgspec.json.decode(line, type=TreeHead)))
        except msgspec.MsgspecError as exc:
            raise HeadFileError(f"{path} line {number}: {exc}; expected a signed tree head "
                                f'{{"kind":"{KIND}","version":{VERSION},"tree_size":…,'
                                '"notification_id":…,"timestamp":…,"root":…,"signature":…}') from None
    return heads


def is_tree_head(line: bytes) -> bool:
    try:
        return msgspec.json.decode(line, type=_Kind).kind == KIND
    except msgspec.MsgspecError:
        return False


def publish(heads: Iterable[TreeHead]) -> list[bytes]:
    """The JSON bodies a publisher (the witness, an outbound webhook) sends, one per head."""
    return [msgspec.json.encode(head) for head in heads]
