"""Issue #18, parts 2 and 5, on SQLite and PostgreSQL: Merkle proofs read from the stored tree,
checked by the standalone verifier (tools/verify_audit.py, which knows nothing of the project)
at random sizes; a proof of a modified event fails; `linkage audit prove` refuses bad input;
a real `linkage audit export` passes the verifier and a tampered one does not."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.security import proofs
from infra.security.seal_snapshot import SealSnapshot
from infra.security.sealer import load_public_key, public_pem
from infra.settings import Settings
from tests.integration.sealed_store import (
    Store,
    audit,
    make_history,
    seal,
    seal_key_path,
    settings_for,
)

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "verify_audit.py"
EVENTS = 18  # 6 incidents, 3 events each; a tree head at every size (checkpoint every event)


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_audit", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A store of EVENTS sealed events, a signed tree head at every size."""
    configured = settings_for(request, tmp_path).with_(seal_checkpoint_every=1)
    service = make_history(configured, incidents=EVENTS // 3)
    seal(configured, service)
    service.close()
    return configured


def proof(configured: Settings, build: Any, *args: Any) -> dict[str, Any]:
    key, _ = load_public_key(configured)
    assert key is not None
    with SealSnapshot.for_settings(configured) as snapshot:
        answer: dict[str, Any] = build(snapshot, key, public_pem(key), *args)
    return json.loads(json.dumps(answer))  # as it travels


def test_the_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(TOOL.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            imported.add((node.module or "").split(".")[0])
    foreign = {name for name in imported
               if name not in sys.stdlib_module_names and name not in ("__future__",
                                                                        "cryptography")}
    assert foreign == set()
    assert {"hashlib", "cryptography"} <= imported


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_inclusion_and_consistency_proofs_at_random_sizes_pass_the_verifier(
    store: Settings, data: st.DataObject
) -> None:
    size = data.draw(st.integers(1, EVENTS), label="tree size")
    n = data.draw(st.integers(1, size), label="notification")
    first = data.draw(st.integers(1, size), label="from")
    inclusion = proof(store, proofs.inclusion, n, size)
    assert (inclusion["leaf_index"], inclusion["tree_size"]) == (n - 1, size)
    assert tool.verify_proof(inclusion, None).startswith(
        f"inclusion verified: notification {n} is leaf {n - 1} of the signed tree of {size}")
    consistency = proof(store, proofs.consistency, first, size)
    assert tool.verify_proof(consistency, None).startswith("consistency verified")
    # Any change to what was proved fails.
    forged = dict(inclusion, leaf_index=(n % size) if size > 1 else 1)
    with pytest.raises(tool.Failed):
        tool.verify_proof(forged, None)
    if first < size:
        other = proof(store, proofs.consistency, first, size)
        other["second_head"] = proof(store, proofs.consistency, size - 1, size - 1)[
            "first_head"] if size > 1 else other["second_head"]
        with pytest.raises(tool.Failed):
            tool.verify_proof(other, None)


def test_a_proof_for_a_modified_event_fails(store: Settings, tmp_path: Path) -> None:
    Store(store).modify(5)
    code, out = audit(store, "prove", "--notification", "5")
    assert code == 0, out
    path = tmp_path / "proof.json"
    path.write_text(out)
    result = subprocess.run([sys.executable, str(TOOL), "proof", str(path), "--key",
                             public_key_file(store, tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED: notification 5 is not the event that was sealed: it was modified" in \
        result.stderr
    code, out = audit(store, "prove", "--notification", "6")  # an untouched neighbour
    path.write_text(out)
    result = subprocess.run([sys.executable, str(TOOL), "proof", str(path), "--key",
                             public_key_file(store, tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "inclusion verified: notification 6 is leaf 5 of the signed tree of 6 events" in \
        result.stdout


def public_key_file(configured: Settings, tmp_path: Path) -> str:
    key, _ = load_public_key(configured)
    assert key is not None
    path = tmp_path / "seal-public.pem"
    path.write_text(public_pem(key))
    return str(path)


def test_an_incident_export_proves_each_event_and_names_a_modified_one(
    store: Settings, tmp_path: Path
) -> None:
    incident = str(Store(store).row(4)[0])  # the second incident: notifications 4, 5, 6
    bundle = proof(store, proofs.incident_bundle, incident)
    assert [e["event"]["notification_id"] for e in bundle["events"]] == [4, 5, 6]
    assert bundle["tree_head"]["tree_size"] == EVENTS and bundle["unproved"] == []
    assert tool.verify_proof(bundle, None) == (
        f"incident {incident} verified: 3 events in the signed tree of {EVENTS} events")
    Store(store).modify(5)
    with pytest.raises(tool.Failed, match="notification 5 is not in the signed tree"):
        tool.verify_proof(proof(store, proofs.incident_bundle, incident), None)


def test_a_real_export_passes_the_standalone_verifier_and_a_tampered_one_fails(
    store: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "export.jsonl"
    assert audit(store, "export", "-o", str(path))[0] == 0
    key = public_key_file(store, tmp_path)
    result = subprocess.run([sys.executable, str(TOOL), "export", str(path), "--key", key],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (f"export verified: {EVENTS} events, their chain, {EVENTS} signed tree heads "
            f"({EVENTS} recomputed from the events)") in result.stdout
    records = [json.loads(line) for line in path.read_text().splitlines()]
    event = records[3]  # notification 3
    event["topic"] = event["topic"] + "x"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = subprocess.run([sys.executable, str(TOOL), "export", str(path), "--key", key],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "FAILED: notification 3 does not hash to its recorded chain hash" in result.stderr
    path.write_text("not json\n")
    result = subprocess.run([sys.executable, str(TOOL), "export", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.startswith("error: ")


@pytest.mark.parametrize(("args", "code", "expected"), [
    ((), 2, "give one of --notification N, --from S1 --to S2, --incident ID"),
    (("--tree-size", "3", "--from", "1", "--to", "2"), 2, "--tree-size goes with --notification"),
    (("--from", "4"), 2, "needs both --from and --to"),
    (("--from", "5", "--to", "3"), 2, "5 is after --to 3"),
    (("--notification", "0"), 2, "0 is not in the range"),
    (("--notification", "x"), 2, "'x' is not a valid integer"),
    (("--incident", "nope"), 2, "'nope' is not an incident id"),
    (("--notification", "999"), 1, "notification 999 is not sealed in the tree (it holds 18"),
    (("--notification", "2", "--tree-size", "999"), 1,
     "no signed tree head of 999 events; the latest is of 18 events"),
    (("--notification", "9", "--tree-size", "4"), 1,
     "notification 9 is leaf 8, after the tree of 4 events"),
], ids=["nothing", "size-alone", "from-alone", "backwards", "zero", "not-a-number",
        "bad-incident", "unsealed", "unsigned-size", "after-the-tree"])
def test_prove_refuses_bad_requests_with_a_clear_message(
    store: Settings, args: tuple[str, ...], code: int, expected: str
) -> None:
    got, out = audit(store, "prove", *args)
    assert got == code and expected in out, out


def test_prove_writes_nothing(store: Settings) -> None:
    before = Store(store).dump()
    assert audit(store, "prove", "--notification", "3")[0] == 0
    assert audit(store, "prove", "--from", "2", "--to", "9")[0] == 0
    assert Store(store).dump() == before
    assert seal_key_path(store)


def test_the_latest_tree_head_exported_is_what_verify_witness_takes(
    store: Settings, tmp_path: Path
) -> None:
    code, out = audit(store, "export-head", "--tree")
    assert code == 0, out
    head = json.loads(out)
    assert (head["kind"], head["tree_size"], head["notification_id"]) == (
        "linkage-tree-head", EVENTS, EVENTS)
    path = tmp_path / "head.jsonl"
    path.write_text(out)
    code, out = audit(store, "verify", "--witness", str(path))
    assert code == 0 and "consistent with 1 signed tree heads" in out, out
    code, out = audit(store, "prove", "--incident", "00000000-0000-4000-8000-000000000000")
    assert code == 1 and "no event of incident 00000000-0000-4000-8000-000000000000" in out
