"""schemathesis against /openapi.json of a running server, with a valid token: no 5xx, and
every request that breaks the schema answered 4xx. Bounded: a few examples per operation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer

pytestmark = pytest.mark.e2e

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.mark.slow  # tens of seconds: CI runs it, a plain `make test` does not
def test_schemathesis_finds_no_server_error_and_no_accepted_invalid_request(
    server: RunningServer, tmp_path: Path
) -> None:
    if not SCHEMATHESIS.exists():
        pytest.fail(f"{SCHEMATHESIS} missing; install the dev extras")
    embedded = server.embedded
    grid = embedded.jurisdiction.grids()[0].id  # type: ignore[attr-defined]
    made = httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
        "source": "hotline", "category": "noise", "grid": grid, "description": "fuzz me"})
    assert made.status_code == 201
    root = embedded.jurisdiction.root.id  # type: ignore[attr-defined]
    below = embedded.jurisdiction.children(root)[0].id  # type: ignore[attr-defined]
    order = httpx.post(f"{server.url}/api/orders", headers=server.headers, json={
        "issuer": root, "addressee": below, "deadline": "2099-01-01T00:00:00+00:00",
        "note": "fuzz me"})
    assert order.status_code == 201, order.text
    # Real ids, so generated requests reach the handlers instead of stopping at 404.
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n"
        f'"path.incident_id" = "{made.json()["id"]}"\n'
        f'"path.order_id" = "{order.json()["id"]}"\n'
        f'"path.center_id" = "{embedded.jurisdiction.root.id}"\n'  # type: ignore[attr-defined]
    )
    auditor = embedded.tokens.issue("fuzz-auditor", "auditor", None)  # type: ignore[attr-defined]
    feed_ingest = "^/api/ingest/(alerts|cap)$"
    addressee = embedded.tokens.issue(  # type: ignore[attr-defined]
        "fuzz-district", "district_officer", below)
    answers = "^/api/orders/[^/]+/(acknowledge|fulfil)$"
    runs = [  # (credentials, operations): the officer everywhere, the auditor on the audit API,
        # the feed key on the alert ingest paths, the order's addressee on its answers
        (f"Authorization: {server.headers['Authorization']}",
         ["--exclude-path-regex", f"^/api/audit/|{feed_ingest}|{answers}"]),
        (f"Authorization: Bearer {addressee}", ["--include-path-regex", answers]),
        (f"Authorization: Bearer {auditor}", ["--include-path-regex", "^/api/audit/"]),
        (f"X-API-Key: {server.feed_headers['X-API-Key']}", ["--include-path-regex", feed_ingest]),
    ]
    for credentials, only in runs:
        command = [
            str(SCHEMATHESIS), "--config-file", str(config), "run", f"{server.url}/openapi.json",
            "-H", credentials, *only,
            "--checks", "not_a_server_error,negative_data_rejection",
            "--phases", "examples,coverage,fuzzing", "--max-examples", "10", "--seed", "7",
            "--no-shrink", "--generation-database", "none", "--workers", "4", "--no-color",
            "--request-timeout", "10",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                check=False, cwd=tmp_path)  # its caches stay out of the repo
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-8000:]
        assert "returned only 401/403" not in output, output[-4000:]
        match = re.search(r"(\d+) generated, (\d+) passed", output)
        assert match is not None, output[-4000:]
        generated, passed = int(match[1]), int(match[2])
        assert generated > 50 and passed == generated, output[-4000:]
