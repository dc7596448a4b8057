"""Issue #16: structured logs with request ids, /healthz and /readyz, and /metrics that count
what happened, on a real server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.security.api_keys import ApiKeys
from infra.settings import Settings
from tests.conftest import RunningServer, _officer_token, free_port, spawn_server, start_server
from tests.e2e.alerting import Console, alert, post_alerts

pytestmark = pytest.mark.e2e

GRID = "130706001001001"
REPORT = {"source": "hotline", "category": "noise", "grid": GRID, "description": "noise at night",
          "location": {"lon": 115.28, "lat": 40.49}, "reporter": None}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, parsed by prometheus-client's own parser."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


# -- logs -----------------------------------------------------------------------------------------


@pytest.fixture
def json_serve(tmp_path: Path) -> Iterator[tuple[str, Path, Path, subprocess.Popen[bytes]]]:
    """`linkage serve` with JSON logs and access logs on; its stdout and stderr in files."""
    port, data = free_port(), tmp_path / "data"
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "linkage"), "serve", "--port", str(port),
             "--data-dir", str(data)], stdout=stdout, stderr=stderr,
            env={**os.environ, "LINKAGE_LOG_FORMAT": "json", "LINKAGE_ACCESS_LOG": "true",
                 "LINKAGE_INGEST_PROCESS": "false", "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, err.read_text()
        assert time.monotonic() < deadline, "linkage serve did not answer /healthz"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url, data, err, process
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=15)


def test_json_logs_carry_the_request_id_which_reaches_the_response_and_the_events(
        json_serve: tuple[str, Path, Path, subprocess.Popen[bytes]]) -> None:
    url, data, err, process = json_serve
    token = _officer_token(data)
    _key_id, key = ApiKeys.for_settings(Settings().with_(data_dir=data)).issue("log-feed")
    officer = {"Authorization": f"Bearer {token}"}
    sent = httpx.post(f"{url}/api/incidents", json=REPORT,
                      headers={**officer, "X-Request-ID": "trace-0042"}, timeout=10)
    assert sent.status_code == 201, sent.text
    assert sent.headers["X-Request-ID"] == "trace-0042"
    incident = sent.json()["id"]
    made = httpx.get(f"{url}/api/incidents/{incident}", headers=officer, timeout=10)
    assert len(made.headers["X-Request-ID"]) == 32  # none sent: one is made
    assert made.json()["timeline"][0]["request_id"] == "trace-0042"
    assert "request_id" not in made.json()["timeline"][0]["actor"]
    # Secrets where a careless client puts them: query strings the access log would show.
    httpx.get(f"{url}/api/centers?token={token}", timeout=10)
    httpx.get(f"{url}/api/centers?api_key={key}", headers=officer, timeout=10)
    httpx.post(f"{url}/api/ingest/alerts", json={"alerts": [alert("log-1")]},
               headers={"X-API-Key": key, "X-Request-ID": "trace-feed"}, timeout=10)
    bad = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "no spaces allowed"}, timeout=10)
    assert bad.status_code == 400 and "X-Request-ID" in bad.json()["detail"]
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)

    lines = [line for line in err.read_text().splitlines() if line.strip()]
    records = [orjson.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message", "request_id", "actor", "center"} <= set(record)
    traced = [r for r in records if r["request_id"] == "trace-0042"]
    assert traced, lines[-20:]
    assert any("POST /api/incidents" in r["message"] and r["actor"] == "test-officer"
               and r["center"] == "130700" for r in traced), traced
    assert any(r["request_id"] == "trace-feed" and r["actor"] == "feed:log-feed"
               for r in records)
    secret = key[len("lk_") + 12 + 1:]
    signature = token.rsplit(".", 1)[1]
    for line in lines:
        assert signature not in line and secret not in line, line


def test_a_bad_log_format_setting_is_refused_naming_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "linkage"), "serve", "--data-dir", str(tmp_path)],
        env={**os.environ, "LINKAGE_LOG_FORMAT": "yaml"}, capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"LINKAGE_LOG_FORMAT must be one of text, json; got 'yaml'" in done.stderr


# -- health ---------------------------------------------------------------------------------------


def test_readyz_names_every_check_and_fails_while_the_ingest_writer_is_down(
        tmp_path: Path) -> None:
    running = start_server(tmp_path / "data", ingest_process=True)
    try:
        ready = httpx.get(f"{running.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "ready"
        assert set(body["checks"]) == {"store", "runner", "ingest_writer"}
        assert all(check["ok"] and check["detail"] for check in body["checks"].values())
        assert httpx.get(f"{running.url}/healthz", timeout=10).json()["status"] == "ok"
        assert post_alerts(running, [alert("before-kill")]).status_code == 200
        writer = running.embedded.writer  # type: ignore[attr-defined]
        os.kill(writer.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while writer.alive():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        down = httpx.get(f"{running.url}/readyz", timeout=10)
        assert down.status_code == 503
        checks = down.json()["checks"]
        assert checks["ingest_writer"]["ok"] is False
        assert "not running" in checks["ingest_writer"]["detail"]
        assert checks["store"]["ok"] and checks["runner"]["ok"]
        # The next batch replaces the writer (at once: this one had stored a batch): ready again.
        assert post_alerts(running, [alert("after-kill")]).status_code == 200
        assert httpx.get(f"{running.url}/readyz", timeout=10).status_code == 200
    finally:
        running.stop()


def test_readyz_fails_when_the_runner_is_further_behind_than_the_bound(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data", ready_max_lag=0)
    try:
        runner = running.embedded.runner  # type: ignore[attr-defined]
        runner.stop()  # the runner no longer follows the store
        response = httpx.post(f"{running.url}/api/incidents", json=REPORT,
                              headers=running.headers, timeout=10)
        assert response.status_code == 201
        behind = httpx.get(f"{running.url}/readyz", timeout=10)
        assert behind.status_code == 503, behind.text
        detail = behind.json()["checks"]["runner"]["detail"]
        assert detail == "the runner is 1 notifications behind the store (bound 0)"
    finally:
        running.stop()


# -- metrics --------------------------------------------------------------------------------------


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "data")
    yield running
    running.stop()


def test_metrics_count_exactly_what_the_test_did(metered: RunningServer) -> None:
    with httpx.Client(base_url=metered.url, headers=metered.headers, timeout=10) as client:
        ids = [client.post("/api/incidents", json=REPORT).json()["id"] for _ in range(3)]
        assert client.post("/api/incidents", json={**REPORT, "grid": "nowhere"}).status_code == 422
        for incident in ids[:2]:
            assert client.post(f"/api/incidents/{incident}/accept", json={}).status_code == 200
        assert client.post(f"/api/incidents/{ids[0]}/accept", json={}).status_code == 409
        assert client.post(f"/api/incidents/{ids[0]}/no-such-action", json={}).status_code == 404
        assert client.get("/api/incidents/not-an-id").status_code == 404
        assert client.get("/no/such/route").status_code == 404
    assert post_alerts(metered, [alert("m1"), alert("m2")]).status_code == 200

    async def with_a_console() -> bytes:
        console = await Console.open(metered, "130700")
        try:
            return httpx.get(f"{metered.url}/metrics", timeout=10).content
        finally:
            await console.ws.close()

    found = samples(asyncio.run(with_a_console()).decode())
    assert value(found, "linkage_commands_total", action="report", outcome="ok") == 3
    assert value(found, "linkage_commands_total", action="report", outcome="422") == 1
    assert value(found, "linkage_commands_total", action="accept", outcome="ok") == 2
    assert value(found, "linkage_commands_total", action="accept", outcome="409") == 1
    assert not any(k[0] == "linkage_commands_total" and ("action", "no-such-action") in k[1]
                   for k in found)
    assert value(found, "linkage_http_requests_total", route="/api/incidents", method="POST",
                 status="201") == 3
    assert value(found, "linkage_http_requests_total", route="/api/incidents/{incident_id}",
                 method="GET", status="404") == 1
    assert value(found, "linkage_http_requests_total", route="unmatched", method="GET",
                 status="404") == 1
    assert value(found, "linkage_http_request_duration_seconds_count",
                 route="/api/incidents/{incident_id}/{action}", method="POST") == 4
    assert value(found, "linkage_ingest_alerts_total", path="http", outcome="accepted") == 2
    assert value(found, "linkage_ingest_alerts_stored_total", status="created") == 2
    head = int(metered.embedded.service.recorder.max_notification_id())  # type: ignore[attr-defined]
    assert head >= 5  # 3 reports, 2 accepts, the alerts' events
    assert value(found, "linkage_events_appended_total") == head  # all of them from this process
    assert value(found, "linkage_event_store_head") == head
    assert value(found, "linkage_consoles_connected") == 1
    assert value(found, "linkage_console_frames_total", kind="sent") >= 1  # the snapshot
    assert value(found, "linkage_runner_lag") >= 0
    assert ("linkage_sealer_lag", ()) in found
    sealed = value(found, "linkage_sealer_position")
    assert 0 <= sealed <= head
    assert value(found, "linkage_sealer_lag") <= head - sealed  # the sealer only moves on


def test_metrics_on_their_own_port_or_behind_a_token(tmp_path: Path) -> None:
    port = free_port()
    serve = spawn_server(tmp_path / "a", env={"LINKAGE_METRICS_PORT": str(port),
                                              "LINKAGE_INGEST_PROCESS": "false"})
    try:
        assert httpx.get(f"{serve.url}/metrics", timeout=10).status_code == 404
        assert httpx.post(f"{serve.url}/api/incidents", json=REPORT, headers=serve.headers,
                          timeout=10).status_code == 201
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert value(samples(text), "linkage_commands_total", action="report", outcome="ok") == 1
    finally:
        serve.process.terminate()  # type: ignore[attr-defined]
        serve.process.wait(timeout=15)  # type: ignore[attr-defined]
    running = start_server(tmp_path / "b", metrics_token="scrape-secret")
    try:
        refused = httpx.get(f"{running.url}/metrics", timeout=10)
        assert refused.status_code == 401 and "LINKAGE_METRICS_TOKEN" in refused.json()["detail"]
        wrong = httpx.get(f"{running.url}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = httpx.get(f"{running.url}/metrics",
                            headers={"Authorization": "Bearer scrape-secret"}, timeout=10)
        assert allowed.status_code == 200 and samples(allowed.text)
    finally:
        running.stop()


def test_demo_prints_its_login_links_after_the_start_up_lines_and_again(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "linkage"), "serve", "--port", str(port),
             "--data-dir", str(tmp_path / "data"), "--demo", "--demo-rate", "5"],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "LINKAGE_LOGIN_REMINDER": "1", "LINKAGE_ACCESS_LOG": "false",
                 "LINKAGE_INGEST_PROCESS": "false", "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("login (demo city duty officer)") < 2:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=15)
    lines = log.read_text().splitlines()
    first_login = next(i for i, line in enumerate(lines) if "login (demo" in line)
    started = next(i for i, line in enumerate(lines) if "Uvicorn running on" in line)
    assert started < first_login
    assert not any('"POST /api/' in line for line in lines)  # no access log lines


@pytest.mark.parametrize("writer", [False, True], ids=["inline", "writer-process"])
def test_alerts_stored_carry_the_request_id(tmp_path: Path, writer: bool) -> None:
    running = start_server(tmp_path / "data", ingest_process=writer)
    try:
        response = httpx.post(f"{running.url}/api/ingest/alerts", timeout=30,
                              json={"alerts": [alert("rid-1")]},
                              headers={**running.feed_headers, "X-Request-ID": "cam-batch-7"})
        assert response.status_code == 200, response.text
        assert response.headers["X-Request-ID"] == "cam-batch-7"
        recorder = running.embedded.service.recorder  # type: ignore[attr-defined]
        [raised] = recorder.select_notifications(
            1, 100, topics=["domain.camera_alert:CameraAlert.Raised"])
        assert orjson.loads(raised.state)["actor"]["request_id"] == "cam-batch-7"
    finally:
        running.stop()
