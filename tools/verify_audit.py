#!/usr/bin/env python3
"""Check Linkage's audit proofs and exports without trusting Linkage.

Written from docs/AUDIT-FORMAT.md alone: it needs the Python standard library and the
`cryptography` package (for Ed25519), and imports nothing from the Linkage project (a test
checks that). Usage:

    verify_audit.py export FILE.jsonl [--key PEM]   # `linkage audit export` (JSON Lines)
    verify_audit.py proof FILE.json [--key PEM]     # an inclusion proof, a consistency proof,
                                                    # or an incident export (GET .../export)

Without --key the public key written in the file is used, and the output says so: pin the key
you were given out of band with --key. Exit 0: verified; 1: a check failed (the message names
it); 2: the file or the arguments are not what was expected.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import uuid
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

SEAL_MAGIC = b"LKSEAL1"
HEAD_MAGIC = b"LKSTH1"
GENESIS = bytes(32)


class Failed(Exception):
    """A check failed: the history or the proof is not what it claims."""


class Malformed(Exception):
    """The input is not a file of the documented format."""


# -- the byte formats (docs/AUDIT-FORMAT.md sections 1-3) ----------------------------------------

def canonical(event: dict[str, Any]) -> bytes:
    try:
        topic = event["topic"].encode()
        state = base64.b64decode(event["state_b64"], validate=True)
        return b"".join([
            SEAL_MAGIC, int(event["notification_id"]).to_bytes(8, "big"),
            uuid.UUID(event["originator_id"]).bytes,
            int(event["originator_version"]).to_bytes(8, "big"),
            len(topic).to_bytes(4, "big"), topic, len(state).to_bytes(8, "big"), state])
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise Malformed(f"an event record lacks or mangles a field ({exc!r}): {event!r:.200}") from None


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def chain_hash(previous: bytes, data: bytes) -> bytes:
    return hashlib.sha256(previous + data).digest()


def head_message(head: dict[str, Any]) -> bytes:
    return (HEAD_MAGIC + int(head["tree_size"]).to_bytes(8, "big")
            + int(head["notification_id"]).to_bytes(8, "big")
            + int(head["timestamp"]).to_bytes(8, "big") + unhex(head["root"], 32))


def unhex(text: Any, size: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except (TypeError, ValueError):
        raise Malformed(f"{text!r:.80} is not hex") from None
    if size is not None and len(raw) != size:
        raise Malformed(f"{text!r:.80} is not {size} bytes of hex")
    return raw


def check_head(key: Ed25519PublicKey, head: dict[str, Any]) -> None:
    try:
        key.verify(unhex(head["signature"], 64), head_message(head))
    except InvalidSignature:
        raise Failed(f"the tree head of {head['tree_size']} events is not signed by the "
                     "key") from None
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise Malformed(f"a tree head lacks or mangles a field ({exc!r})") from None


# -- the tree (RFC 6962 / RFC 9162) ---------------------------------------------------------

def root_of(frontier: list[bytes]) -> bytes:
    if not frontier:
        return hashlib.sha256(b"").digest()
    top = frontier[-1]
    for left in reversed(frontier[:-1]):
        top = node_hash(left, top)
    return top


def push(frontier: list[bytes], size: int, leaf: bytes) -> None:
    node = leaf
    while size & 1:
        node = node_hash(frontier.pop(), node)
        size >>= 1
    frontier.append(node)


def inclusion_root(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    if not 0 <= index < size:
        raise Failed(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Failed("the inclusion proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn:
        raise Failed("the inclusion proof is shorter than the tree is high")
    return r


def check_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                      path: list[bytes]) -> None:
    if not 0 < first <= second:
        raise Failed(f"no consistency proof goes from {first} to {second} leaves")
    if first == second:
        if path or first_root != second_root:
            raise Failed(f"two heads of {first} leaves with different roots")
        return
    if first & (first - 1) == 0:
        path = [first_root, *path]
    if not path:
        raise Failed("the consistency proof is empty")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Failed("the consistency proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn or fr != first_root or sr != second_root:
        raise Failed(f"the tree of {first} events is not a prefix of the tree of {second} "
                     "events: history was rewritten between the two heads")


# -- the checks -------------------------------------------------------------------------------

def load_key(pem: str) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError, AttributeError):
        raise Malformed("the public key is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise Malformed("the public key is not an Ed25519 key")
    return key


def verify_export(records: list[dict[str, Any]], key: Ed25519PublicKey | None) -> str:
    """A `linkage audit export`: every chain hash, checkpoint and tree head."""
    if not records or "public_key" not in records[0]:
        raise Malformed("the first record must be the export's header, with its public_key")
    key = key or load_key(records[0]["public_key"])
    previous: bytes | None = None
    frontier: list[bytes] = []
    size = 0
    from_start = None
    at: dict[int, tuple[bytes, int]] = {}  # tree size -> (root, last notification id)
    chain: dict[int, bytes] = {}
    heads: list[dict[str, Any]] = []
    for rec in records[1:]:
        if "tree_head" in rec:
            heads.append(rec["tree_head"])
            continue
        if "checkpoint" in rec:
            message = (f"linkage-checkpoint|{rec['checkpoint']}|{rec['notification_id']}|"
                       f"{rec['count']}|{rec['hash']}").encode()
            try:
                key.verify(unhex(rec["signature"], 64), message)
            except InvalidSignature:
                raise Failed(f"checkpoint {rec['checkpoint']} is not signed by the key") from None
            if chain.get(rec["notification_id"], unhex(rec["hash"])) != unhex(rec["hash"]):
                raise Failed(f"checkpoint {rec['checkpoint']} does not match the chain")
            continue
        prev = unhex(rec.get("prev_hash"), 32)
        if from_start is None:
            from_start = prev == GENESIS
        if previous is not None and prev != previous:
            raise Failed(f"notification {rec['notification_id']} does not link to the one "
                         "before it")
        data = canonical(rec)
        h = chain_hash(prev, data)
        if h.hex() != rec.get("hash"):
            raise Failed(f"notification {rec['notification_id']} does not hash to its recorded "
                         "chain hash: it was modified")
        chain[rec["notification_id"]] = previous = h
        push(frontier, size, leaf_hash(data))
        size += 1
        at[size] = (root_of(frontier), rec["notification_id"])
    checked = 0
    for head in heads:
        check_head(key, head)
        if not from_start:
            continue  # a partial export: its events' leaf indexes are unknown
        got = at.get(head["tree_size"])
        if got is None:
            continue  # signed over events beyond this export
        if got != (unhex(head["root"], 32), head["notification_id"]):
            raise Failed(f"the events give another root at {head['tree_size']} events than the "
                         f"signed tree head (notification {head['notification_id']}): modified")
        checked += 1
    return (f"export verified: {size} events, their chain, {len(heads)} signed tree heads"
            + (f" ({checked} recomputed from the events)" if from_start else
               " (signatures only: the export does not start at notification 1)"))


def verify_proof(doc: dict[str, Any], key: Ed25519PublicKey | None) -> str:
    kind = doc.get("kind")
    if doc.get("version") != 1 or kind not in ("linkage-inclusion-proof",
                                                "linkage-consistency-proof",
                                                "linkage-incident-proofs"):
        raise Malformed(f"kind {kind!r} version {doc.get('version')!r} is not a proof this "
                        "verifier reads")
    key = key or load_key(doc["public_key"])
    try:
        if kind == "linkage-consistency-proof":
            old, new = doc["first_head"], doc["second_head"]
            check_head(key, old)
            check_head(key, new)
            if (old["tree_size"], new["tree_size"]) != (doc["first"], doc["second"]):
                raise Failed("the proof's sizes are not its heads' sizes")
            check_consistency(doc["first"], doc["second"], unhex(old["root"], 32),
                              unhex(new["root"], 32), [unhex(p, 32) for p in doc["path"]])
            return (f"consistency verified: the tree of {doc['first']} events is a prefix of "
                    f"the tree of {doc['second']} events")
        head = doc["tree_head"]
        if head is None:
            raise Failed("no signed tree head covers these events yet")
        check_head(key, head)
        root, size = unhex(head["root"], 32), head["tree_size"]
        if kind == "linkage-inclusion-proof":
            leaf = unhex(doc["leaf_hash"], 32)
            if doc.get("event") is None:
                raise Failed(f"notification {doc['notification_id']} is no longer stored: it "
                             "was deleted")
            if leaf_hash(canonical(doc["event"])) != leaf:
                raise Failed(f"notification {doc['notification_id']} is not the event that "
                             "was sealed: it was modified")
            items = [(doc["notification_id"], leaf, doc["leaf_index"], doc["path"])]
        else:
            items = [(e["event"]["notification_id"], leaf_hash(canonical(e["event"])),
                      e["leaf_index"], e["path"]) for e in doc["events"]]
        for n, leaf, index, path in items:
            if inclusion_root(leaf, index, size, [unhex(p, 32) for p in path]) != root:
                raise Failed(f"notification {n} is not in the signed tree of {size} events: it "
                             "was modified, or the proof is not of this tree")
    except (KeyError, TypeError) as exc:
        raise Malformed(f"the proof lacks or mangles a field ({exc!r})") from None
    if kind == "linkage-inclusion-proof":
        return (f"inclusion verified: notification {doc['notification_id']} is leaf "
                f"{doc['leaf_index']} of the signed tree of {size} events")
    unproved = doc.get("unproved") or []
    tail = f"; {len(unproved)} later events not yet covered by a signed head" if unproved else ""
    return (f"incident {doc.get('incident')} verified: {len(items)} events in the signed tree "
            f"of {size} events{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["export", "proof"])
    parser.add_argument("file")
    parser.add_argument("--key", help="the seal's public key (PEM file), given out of band")
    args = parser.parse_args(argv)
    try:
        key = None
        if args.key:
            with open(args.key, encoding="utf-8") as handle:
                key = load_key(handle.read())
        with open(args.file, "rb") as handle:
            data = handle.read()
        if args.what == "export":
            records = [json.loads(line) for line in data.splitlines() if line.strip()]
            message = verify_export(records, key)
        else:
            message = verify_proof(json.loads(data), key)
    except (OSError, ValueError, Malformed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Failed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    if key is None:
        message += " (with the public key written in the file: pin yours with --key)"
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
