"""Issue #18, part 2, over HTTP: an auditor fetches inclusion and consistency proofs and an
incident's export from a running server; the standalone verifier accepts them. Bad requests get
a 4xx problem saying what was expected."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import start_server

pytestmark = pytest.mark.e2e
TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_audit.py"


def verified(tmp_path: Path, doc: dict[str, Any]) -> str:
    path = tmp_path / "proof.json"
    path.write_bytes(orjson.dumps(doc))
    result = subprocess.run([sys.executable, str(TOOL), "proof", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_an_auditor_gets_proofs_the_standalone_verifier_accepts(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", seal_checkpoint_every=2, seal_interval=0.05)
    try:
        embedded: Any = server.embedded
        auditor = {"Authorization": f"Bearer {embedded.tokens.issue('aud', 'auditor', None)}"}
        officer = httpx.Client(base_url=server.url, headers=server.headers, timeout=10)
        http = httpx.Client(base_url=server.url, headers=auditor, timeout=10)
        grid = embedded.jurisdiction.grids()[0].id
        made = officer.post("/api/incidents", json={
            "source": "hotline", "category": "garbage", "grid": grid, "description": "bins"})
        assert made.status_code == 201, made.text
        incident = made.json()["id"]
        assert officer.post(f"/api/incidents/{incident}/accept", json={}).status_code == 200

        deadline = time.monotonic() + 30
        while True:  # the sealer signs a head over the two events
            answer = http.get("/api/audit/proofs/inclusion", params={"notification": 2})
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert answer.status_code == 200, answer.text
        assert "inclusion verified: notification 2 is leaf 1" in verified(tmp_path, answer.json())

        export = http.get(f"/api/audit/incidents/{incident}/export")
        assert export.status_code == 200, export.text
        assert f"incident {incident} verified: 2 events" in verified(tmp_path, export.json())

        size = answer.json()["tree_size"]
        consistency = http.get("/api/audit/proofs/consistency", params={"from": 2, "to": size})
        assert consistency.status_code == 200, consistency.text
        assert "consistency verified" in verified(tmp_path, consistency.json())

        bad = {
            "/api/audit/proofs/inclusion?notification=abc": (422, "'abc' is not a positive"),
            "/api/audit/proofs/inclusion?notification=0": (422, "not a positive integer"),
            "/api/audit/proofs/inclusion?notification=%C2%B2": (422, "not a positive integer"),
            "/api/audit/proofs/inclusion": (422, "'notification' is required"),
            "/api/audit/proofs/inclusion?notification=99999999999999999999": (
                422, "up to 4611686018427387904"),
            "/api/audit/proofs/inclusion?notification=99999": (404, "is not sealed in the tree"),
            "/api/audit/proofs/inclusion?notification=1&tree_size=999": (
                404, "no signed tree head of 999 events"),
            "/api/audit/proofs/consistency?from=3&to=2": (422, "from=3 is after to=2"),
            "/api/audit/proofs/consistency?from=1": (422, "'to' is required"),
            "/api/audit/proofs/consistency?from=2&to=999": (404, "no signed tree head of 999"),
            "/api/audit/proofs/consistency?from=1&to=2": (404, "no signed tree head of 1 events"),
            "/api/audit/incidents/00000000-0000-0000-0000-000000000000/export": (404, ""),
            "/api/audit/incidents/not-an-id/export": (404, ""),
        }
        for path, (code, detail) in bad.items():
            got = http.get(path)
            assert got.status_code == code, (path, got.text)
            assert got.headers["content-type"].startswith("application/problem+json"), path
            assert detail in got.json()["detail"], (path, got.text)
        assert officer.get("/api/audit/proofs/inclusion", params={
            "notification": 1}).status_code == 403
        assert httpx.get(f"{server.url}/api/audit/proofs/consistency?from=1&to=2"
                         ).status_code == 401
    finally:
        server.stop()
