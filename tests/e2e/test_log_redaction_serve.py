"""`linkage serve` never writes a token to its log, however the query string spells the parameter
(issue #11 row 11: `&%74oken=<jwt>` was accepted as `token` and logged as it came)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import _officer_token, free_port

pytestmark = pytest.mark.e2e


def test_percent_encoded_token_parameters_are_redacted_in_every_log_line(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "data"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "linkage"), "serve", "--port", str(port),
             "--data-dir", str(data)],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "LINKAGE_WS_ALLOW_MISSING_ORIGIN": "true",
                 "LINKAGE_INGEST_PROCESS": "false", "PYTHONUNBUFFERED": "1"})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "linkage serve did not answer /healthz"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = _officer_token(data)
        ws = f"ws://127.0.0.1:{port}/ws/console?center=130700"
        # Accepted: the server decodes %74 to "t".
        with connect(f"{ws}&%74oken={token}", open_timeout=10) as console:
            console.send('{"type": "hello"}')
            assert orjson.loads(console.recv(timeout=10))["type"] == "snapshot"
        # Refused (tampered signature): logged with 403.
        with pytest.raises(InvalidStatus), connect(f"{ws}&to%6Ben={token}x", open_timeout=10):
            pass
        # Plain HTTP requests carry it in the access log line.
        httpx.get(f"{url}/api/centers?%74oken={token}&access%5Ftoken={token}")
        httpx.get(f"{url}/healthz?TOKEN={token}")
    finally:
        process.terminate()
        process.wait(timeout=15)
    text = log_path.read_text()
    signature = token.rsplit(".", 1)[1]
    assert signature not in text, [line for line in text.splitlines() if signature in line]
    for spelled in ("%74oken=[redacted]", "to%6Ben=[redacted]", "access%5Ftoken=[redacted]",
                    "TOKEN=[redacted]"):
        assert spelled in text, text[-4000:]
