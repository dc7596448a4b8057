"""docs/AUDIT-FORMAT.md's worked example is a fixture: every hex value in it is what the code
produces for the events it describes, and the standalone verifier accepts the proof it shows."""

from __future__ import annotations

import base64
import importlib.util
import re
from pathlib import Path
from uuid import UUID

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.security import merkle, tree_head
from infra.security.seal_format import Stored, canonical
from infra.security.witness import key_id

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "AUDIT-FORMAT.md"
INCIDENT_1 = UUID("11111111-1111-4111-8111-111111111111")
INCIDENT_2 = UUID("22222222-2222-4222-8222-222222222222")
EVENTS = [
    Stored(1, INCIDENT_1, 1, "domain.incident:Incident.Reported", b'{"category":"noise"}'),
    Stored(2, INCIDENT_1, 2, "domain.incident:Incident.Accepted", b"{}"),
    Stored(3, INCIDENT_2, 1, "domain.incident:Incident.Reported", b'{"category":"water"}'),
]
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
TIMESTAMP = 1777593600000  # 2026-05-01T00:00:00Z


def documented() -> dict[str, str]:
    section = DOC.read_text().split("## 8. Worked example", 1)[1]
    block = re.findall(r"```\n(.*?)```", section, re.DOTALL)[-1]  # the values, last
    return dict(re.findall(r"^(.+?) = ([0-9a-f ]+)$", block, re.MULTILINE))


def computed() -> dict[str, str]:
    leaves = [merkle.leaf_hash(canonical(e)) for e in EVENTS]
    nodes = {(0, i): leaf for i, leaf in enumerate(leaves)}
    frontier: list[bytes] = []
    for i, leaf in enumerate(leaves):
        for level, index, node in merkle.append(frontier, i, leaf):
            nodes[(level, index)] = node
    sub = merkle.subtree(lambda level, index: nodes[(level, index)])
    root = merkle.root(frontier)
    out = {"public key (raw)": KEY.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()}
    for event, leaf in zip(EVENTS, leaves, strict=True):
        out[f"event {event.id} canonical"] = canonical(event).hex()
        out[f"leaf {event.id - 1} hash"] = leaf.hex()
    out["node (leaves 0-1)"] = nodes[(1, 0)].hex()
    out["root (3 leaves)"] = root.hex()
    out["tree head message"] = tree_head.message(3, 3, TIMESTAMP, root).hex()
    out["tree head signature"] = tree_head.sign(KEY, 3, 3, TIMESTAMP, root).signature
    out["inclusion path (leaf 1, 3 leaves)"] = " ".join(
        p.hex() for p in merkle.inclusion_proof(sub, 1, 3))
    out["consistency path (2 to 3 leaves)"] = " ".join(
        p.hex() for p in merkle.consistency_proof(sub, 2, 3))
    return out


def test_the_documented_example_is_what_the_code_produces() -> None:
    doc = documented()
    assert len(doc) == 13
    assert doc == computed()


def test_the_standalone_verifier_accepts_the_documented_proof() -> None:
    doc = documented()
    spec = importlib.util.spec_from_file_location("verify_audit", ROOT / "tools" / "verify_audit.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    pem = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    event = EVENTS[1]
    head = {"kind": "linkage-tree-head", "version": 1, "tree_size": 3, "notification_id": 3,
            "timestamp": TIMESTAMP, "root": doc["root (3 leaves)"], "key": key_id(KEY.public_key()),
            "signature": doc["tree head signature"]}
    proof = {"kind": "linkage-inclusion-proof", "version": 1, "notification_id": 2,
             "leaf_index": 1, "tree_size": 3, "leaf_hash": doc["leaf 1 hash"],
             "path": doc["inclusion path (leaf 1, 3 leaves)"].split(), "tree_head": head,
             "event": {"notification_id": 2, "originator_id": str(event.originator_id),
                       "originator_version": 2, "topic": event.topic,
                       "state_b64": base64.b64encode(event.state).decode()},
             "public_key": pem}
    assert tool.verify_proof(proof, None) == (
        "inclusion verified: notification 2 is leaf 1 of the signed tree of 3 events")
    assert tool.canonical(proof["event"]).hex() == doc["event 2 canonical"]


def test_the_field_by_field_breakdown_is_event_2s_encoding() -> None:
    section = DOC.read_text().split("## 8. Worked example", 1)[1]
    breakdown = re.findall(r"```\n(.*?)```", section, re.DOTALL)[0]
    fields = [line.split()[0] for line in breakdown.splitlines()
              if line and re.fullmatch(r"[0-9a-f]+", line.split()[0])]
    assert "".join(fields) == canonical(EVENTS[1]).hex()
