"""Outbound alerts against a real server and a local receiver (issue #16): a signed JSON
webhook and a CAP 1.2 message that validates against the schema when a major case is opened;
a receiver down for a while, then up: every delivery arrives exactly once per idempotency key,
in order per incident; deliveries survive a restart; dead letters; the CLI."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import xmlschema
from defusedxml import ElementTree as SafeET

from infra.outbound.cap import SCHEMA
from infra.outbound.wiring import outbound_store
from infra.settings import Settings
from tests.conftest import RunningServer, free_port, start_server
from tests.e2e.receiver import Receiver

pytestmark = pytest.mark.e2e

GRID = "130706001001001"
OTHER_TOWNSHIP_GRID = "130706200001001"
SECRET = "a-shared-secret-of-the-receiver"
# Retries every 0.1-0.3 s, and never dead while a test keeps its receiver down (on a loaded
# machine the commands of a test can take longer than 12 quick attempts).
FAST = {"outbound_poll": 0.05, "outbound_backoff": 0.1, "outbound_max_backoff": 0.3,
        "outbound_max_attempts": 10_000}
CAP_NS = "{urn:oasis:names:tc:emergency:cap:1.2}"


def subscriptions_file(tmp_path: Path, *subs: dict[str, Any]) -> str:
    path = tmp_path / "subscriptions.json"
    path.write_bytes(orjson.dumps({"subscriptions": [
        {"secret": SECRET, "events": ["major_reported"], **sub} for sub in subs]}))
    return str(path)


def report(server: RunningServer, grid: str = GRID, severity: str = "major") -> str:
    response = httpx.post(f"{server.url}/api/incidents", headers=server.headers, timeout=10,
                          json={"source": "hotline", "category": "fire_hazard", "grid": grid,
                                "severity": severity, "description": "电动车楼道充电 e-bike",
                                "location": {"lon": 115.136, "lat": 40.4085}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def act(server: RunningServer, incident: str, action: str, **body: Any) -> None:
    response = httpx.post(f"{server.url}/api/incidents/{incident}/{action}", json=body,
                          headers=server.headers, timeout=10)
    assert response.status_code == 200, response.text


def linkage(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`linkage outbound ...` on a data dir (`check` takes none: it reads only its file)."""
    where = [] if args[:2] == ("outbound", "check") else ["--data-dir", str(data_dir)]
    return subprocess.run([str(Path(sys.executable).parent / "linkage"), *args, *where],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.stop()


def new_receiver(receivers: list[Receiver], start: bool = True) -> Receiver:
    receiver = Receiver(free_port())
    receivers.append(receiver)
    return receiver.start() if start else receiver


def test_a_major_case_sends_a_signed_webhook_and_valid_cap(
        tmp_path: Path, receivers: list[Receiver]) -> None:
    hook, cap = new_receiver(receivers), new_receiver(receivers)
    server = start_server(tmp_path / "data", **FAST, outbound_file=subscriptions_file(
        tmp_path, {"name": "ops-hook", "url": hook.url},
        {"name": "emergency-cap", "url": cap.url, "format": "cap"}))
    try:
        report(server, severity="routine")  # not a kind anyone subscribed to
        incident = report(server)
        hook.wait_for(lambda got: len(got) >= 1)
        cap.wait_for(lambda got: len(got) >= 1)
    finally:
        server.stop()
    [webhook] = hook.messages()
    expected = "sha256=" + hmac.new(SECRET.encode(), webhook.body, hashlib.sha256).hexdigest()
    assert webhook.headers["X-Linkage-Signature"] == expected
    assert webhook.headers["Content-Type"] == "application/json"
    body = orjson.loads(webhook.body)
    assert body["kinds"] == ["major_reported"] and body["incident"] == incident
    assert body["centers"] == ["130706001", "130706", "130700"] and body["severity"] == "major"
    assert webhook.headers["Idempotency-Key"] == body["id"] == \
        f"ops-hook:{body['notification_id']}"

    [message] = cap.messages()
    assert message.headers["Content-Type"] == "application/cap+xml"
    assert message.headers["X-Linkage-Signature"] == "sha256=" + hmac.new(
        SECRET.encode(), message.body, hashlib.sha256).hexdigest()
    xmlschema.XMLSchema(str(SCHEMA)).validate(message.body.decode())  # raises when invalid
    alert = SafeET.fromstring(message.body)
    assert alert.tag == f"{CAP_NS}alert"
    assert alert.findtext(f"{CAP_NS}incidents") == incident
    assert alert.findtext(f"{CAP_NS}info/{CAP_NS}severity") == "Severe"
    assert alert.findtext(f"{CAP_NS}info/{CAP_NS}category") == "Fire"


def test_a_receiver_down_then_up_gets_every_delivery_once_in_order(
        tmp_path: Path, receivers: list[Receiver]) -> None:
    hook = new_receiver(receivers, start=False)  # down: connections are refused
    server = start_server(tmp_path / "data", **FAST, outbound_file=subscriptions_file(
        tmp_path, {"name": "command", "url": hook.url,
                   "events": ["major_reported", "escalated_district", "escalated_city",
                              "supervision_overdue"]}))
    try:
        incidents = [report(server) for _ in range(4)]
        # A major case is escalated to its township as it is reported (no kind subscribed to);
        # then to the district and the city.
        for incident in incidents[:2]:
            act(server, incident, "accept")
            for _ in range(2):
                act(server, incident, "escalate", reason="overdue")
        report(server, grid=OTHER_TOWNSHIP_GRID, severity="routine")  # not wanted
        # Commands were answered while the receiver was down; deliveries wait, counted.
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert 'linkage_outbound_deliveries_total{outcome="retry",subscription="command"}' \
            in metrics
        hook.start()
        # 4 reports + 2 incidents x 2 escalations (overdue; to the district, to the city)
        hook.wait_for(lambda got: len({m.headers["Idempotency-Key"] for m in got}) == 8)
    finally:
        server.stop()
    messages = hook.messages()
    keys = [m.headers["Idempotency-Key"] for m in messages]
    assert len(keys) == len(set(keys)) == 8  # exactly once per key
    bodies = [orjson.loads(m.body) for m in messages]
    for incident in incidents:
        seen = [b["notification_id"] for b in bodies if b["incident"] == incident]
        assert seen == sorted(seen)
        assert len(seen) == (3 if incident in incidents[:2] else 1)
    assert [b["notification_id"] for b in bodies] == sorted(b["notification_id"] for b in bodies)
    escalations = [b for b in bodies if b["event"] == "Incident.Escalated"]
    assert sorted(b["level"] for b in escalations) == ["city", "city", "district", "district"]
    assert all("supervision_overdue" in b["kinds"] for b in escalations)


def test_pending_deliveries_survive_a_restart(tmp_path: Path, receivers: list[Receiver]) -> None:
    hook = new_receiver(receivers, start=False)
    settings = {**FAST, "outbound_file": subscriptions_file(
        tmp_path, {"name": "command", "url": hook.url})}
    server = start_server(tmp_path / "data", **settings)
    try:
        first = [report(server) for _ in range(3)]
    finally:
        server.stop()
    status = linkage("outbound", "status", data_dir=tmp_path / "data")
    assert "command: pending=3 delivered=0 dead=0" in status.stdout, status
    hook.start()
    server = start_server(tmp_path / "data", **settings)
    try:
        later = report(server)
        hook.wait_for(lambda got: len(got) >= 4)
    finally:
        server.stop()
    assert [orjson.loads(m.body)["incident"] for m in hook.messages()] == [*first, later]
    status = linkage("outbound", "status", data_dir=tmp_path / "data")
    assert "command: pending=0 delivered=4 dead=0" in status.stdout, status


def test_centers_and_kinds_choose_what_a_subscription_hears(
        tmp_path: Path, receivers: list[Receiver]) -> None:
    township, everything = new_receiver(receivers), new_receiver(receivers)
    server = start_server(tmp_path / "data", **FAST, outbound_file=subscriptions_file(
        tmp_path, {"name": "other-township", "url": township.url, "centers": ["130706200"]},
        {"name": "all", "url": everything.url}))
    try:
        report(server, grid=GRID)
        wanted = report(server, grid=OTHER_TOWNSHIP_GRID)
        everything.wait_for(lambda got: len(got) == 2)
        township.wait_for(lambda got: len(got) == 1)
    finally:
        server.stop()
    assert orjson.loads(township.messages()[0].body)["incident"] == wanted


def test_dead_letters_are_listed_and_sent_again_on_retry(
        tmp_path: Path, receivers: list[Receiver]) -> None:
    hook = new_receiver(receivers)
    hook.status = 500
    data = tmp_path / "data"
    server = start_server(data, **{**FAST, "outbound_max_attempts": 2})
    try:
        added = linkage("outbound", "add", "--name", "flaky", "--url", hook.url, "--event",
                        "major_reported", "--secret", SECRET, data_dir=data)
        assert added.returncode == 0, added.stderr
        incident = report(server)
        hook.wait_for(lambda got: len(got) == 2)  # two attempts, then a dead letter

        def dead() -> str:
            return linkage("outbound", "dead", data_dir=data).stdout

        deadline = 200
        while "flaky:" not in dead() and deadline:
            deadline -= 1
        assert f"{incident} attempts=2 HTTP 500" in dead()
        assert "dead=1" in linkage("outbound", "status", data_dir=data).stdout
        hook.status = 200
        retried = linkage("outbound", "retry", "flaky", data_dir=data)
        assert "1 dead letters of flaky are pending again" in retried.stdout
        hook.wait_for(lambda got: len(got) == 3)
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    finally:
        server.stop()
    assert len({m.headers["Idempotency-Key"] for m in hook.messages()}) == 1  # the same key
    assert 'linkage_outbound_deliveries_total{outcome="dead",subscription="flaky"} 1.0' in metrics
    assert 'linkage_outbound_deliveries_total{outcome="delivered",subscription="flaky"} 1.0' \
        in metrics


def test_the_cli_refuses_bad_subscriptions_naming_the_problem(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad_url = linkage("outbound", "add", "--name", "x", "--url", "ftp://host/", "--event",
                      "major_reported", data_dir=data)
    assert bad_url.returncode != 0 and "url must be an http(s) URL" in bad_url.stderr
    bad_kind = linkage("outbound", "add", "--name", "x", "--url", "http://host/", "--event",
                       "storm", data_dir=data)
    assert bad_kind.returncode != 0 and "unknown event kind 'storm'" in bad_kind.stderr
    bad_center = linkage("outbound", "add", "--name", "x", "--url", "http://host/", "--event",
                         "rule_fired", "--center", "nowhere", data_dir=data)
    assert bad_center.returncode != 0 and "center 'nowhere'" in bad_center.stderr
    cap_heads = linkage("outbound", "add", "--name", "x", "--url", "http://host/", "--format",
                        "cap", "--event", "tree_head_signed", data_dir=data)
    assert cap_heads.returncode != 0 and "tree_head_signed is sent as JSON only" in \
        cap_heads.stderr
    made = linkage("outbound", "add", "--name", "x", "--url", "http://host/", "--event",
                   "rule_fired", data_dir=data)
    assert made.returncode == 0 and "secret (shown once" in made.stdout
    heads = linkage("outbound", "add", "--name", "witness", "--url", "http://host/", "--event",
                    "tree_head_signed", data_dir=data)
    assert heads.returncode == 0, heads.stderr
    again = linkage("outbound", "add", "--name", "x", "--url", "http://host/", "--event",
                    "rule_fired", data_dir=data)
    assert again.returncode != 0 and "exists already" in again.stderr
    path = tmp_path / "subs.json"
    path.write_bytes(orjson.dumps({"subscriptions": [
        {"name": "a", "url": "http://h/", "events": ["major_reported"], "secret": "short"}]}))
    checked = linkage("outbound", "check", str(path), data_dir=data)
    assert checked.returncode == 1 and "secret" in checked.stderr
    path.write_bytes(orjson.dumps({"subscriptions": [
        {"name": "a", "url": "http://h/", "events": ["tree_head_signed", "rule_fired"],
         "secret": SECRET}]}))
    checked = linkage("outbound", "check", str(path), data_dir=data)
    assert checked.returncode == 1 and "of its own" in checked.stderr
    path.write_bytes(orjson.dumps({"subscriptions": [
        {"name": "a", "url": "http://h/", "events": ["major_reported"], "secret": SECRET}]}))
    assert linkage("outbound", "check", str(path), data_dir=data).stdout.startswith("ok: 1")


def test_status_and_dead_write_nothing(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    assert "no outbound deliveries yet" in linkage("outbound", "status", data_dir=data).stdout
    assert "no dead letters" in linkage("outbound", "dead", data_dir=data).stdout
    assert not data.exists()


def test_an_alert_storm_is_told_once(tmp_path: Path, receivers: list[Receiver]) -> None:
    from tests.e2e.alerting import CAMERA, START, alert, post_alerts

    hook, cap = new_receiver(receivers), new_receiver(receivers)
    server = start_server(tmp_path / "data", **FAST, outbound_file=subscriptions_file(
        tmp_path, {"name": "storms", "url": hook.url, "events": ["storm_started"]},
        {"name": "storms-cap", "url": cap.url, "events": ["storm_started"], "format": "cap"}))
    try:
        # 10 alerts of one camera in one 10 s window: its storm threshold; then 5 more.
        first = post_alerts(server, [alert(f"s{i}", start_time=START + i * 0.5)
                                     for i in range(10)])
        assert first.status_code == 200, first.text
        assert post_alerts(server, [alert(f"t{i}", start_time=START + 6 + i * 0.5)
                                    for i in range(5)]).status_code == 200
        hook.wait_for(lambda got: len(got) >= 1)
        cap.wait_for(lambda got: len(got) >= 1)
        report(server, severity="routine")
        head = int(server.embedded.service.recorder.max_notification_id())  # type: ignore[attr-defined]
        store = outbound_store(Settings().with_(data_dir=tmp_path / "data"), create=False)
        deadline = time.monotonic() + 30
        while (store.position("outbound") or 0) < head:  # scanned past every alert
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # Every delivery is stored with the scan that found it: one per subscription.
        tallies = {t.subscription: t.pending + t.delivered + t.dead for t in store.tallies()}
        assert tallies == {"storms": 1, "storms-cap": 1}
        delivered = 'linkage_outbound_deliveries_total{outcome="delivered",subscription="storms"}'
        while f"{delivered} 1.0" not in httpx.get(f"{server.url}/metrics", timeout=10).text:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        server.stop()
    [told] = [orjson.loads(m.body) for m in hook.messages()]
    assert told["kinds"] == ["storm_started"]
    assert told["subject"] == f"camera:{CAMERA}:10@{int(START)}"
    assert (told["storm"], told["window"], told["count"]) == ("camera", 10, 10)
    [message] = cap.messages()
    xmlschema.XMLSchema(str(SCHEMA)).validate(message.body.decode())
    assert SafeET.fromstring(message.body).findtext(
        f"{CAP_NS}info/{CAP_NS}headline") == "Alert storm started / 告警风暴"
