"""Issue #16 in distributed mode: the hub, the relay and the worker each serve /metrics that
prometheus-client parses and that count what the test did; the hub's /readyz checks PostgreSQL,
Redis and Kafka; the hub's deliverer (on PostgreSQL, under its lease) sends outbound alerts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.e2e.receiver import Receiver
from tests.integration.distributed import Stack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path, postgres_dsn: str, pg_schema: str, redis_url: str,
          kafka_bootstrap: str) -> Iterator[Stack]:
    running = Stack(tmp_path, postgres_dsn, pg_schema, redis_url, kafka_bootstrap)
    yield running
    running.close()


def scrape(url: str) -> dict[str, float]:
    """name{labels} -> value, parsed by prometheus-client."""
    text = httpx.get(url, timeout=10).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


def test_hub_relay_and_worker_serve_metrics_that_count_what_happened(
        stack: Stack, tmp_path: Path) -> None:
    relay_port, worker_port, hub_port = free_port(), free_port(), free_port()
    receiver = Receiver(free_port()).start()  # the hub's deliverer, on PostgreSQL, sends here
    subscriptions = tmp_path / "subscriptions.json"
    subscriptions.write_bytes(orjson.dumps({"subscriptions": [{
        "name": "command", "url": receiver.url, "events": ["major_reported"],
        "secret": "a-shared-secret-of-the-receiver"}]}))
    stack.start("relay", "relay", LINKAGE_RELAY_METRICS_PORT=str(relay_port))
    stack.start("worker", "worker", LINKAGE_WORKER_METRICS_PORT=str(worker_port))
    stack.start("hub", "serve", "--mode", "distributed", "--port", str(hub_port),
                LINKAGE_OUTBOUND_FILE=str(subscriptions), LINKAGE_OUTBOUND_POLL="0.1")
    hub = f"http://127.0.0.1:{hub_port}"
    wait_until(lambda: "Uvicorn running" in stack.log("hub") or
               stack.processes["hub"].poll() is not None, 60, what="hub listening")
    assert stack.processes["hub"].poll() is None, stack.log("hub")
    headers = {"Authorization": f"Bearer {stack.token}"}
    grid = stack.jurisdiction.grids()[0].id
    # The hub seeded the grid registry from the directory file as it started (#15): its own events.
    seeded = int(stack.service.recorder.max_notification_id() or 0)
    for severity in ("routine", "routine", "major"):
        response = httpx.post(f"{hub}/api/incidents", headers=headers, timeout=10, json={
            "source": "hotline", "category": "noise", "grid": grid, "description": "noise",
            "severity": severity})
        assert response.status_code == 201, response.text
    major = response.json()["id"]
    head = int(stack.service.recorder.max_notification_id() or 0)
    assert head == seeded + 4  # a major report is escalated to its township as it is made
    try:
        receiver.wait_for(lambda got: len(got) == 1, 60)
    finally:
        receiver.stop()
    assert orjson.loads(receiver.messages()[0].body)["incident"] == major

    def caught_up() -> bool:
        try:
            worker = scrape(f"http://127.0.0.1:{worker_port}/metrics")
            relay = scrape(f"http://127.0.0.1:{relay_port}/metrics")
        except httpx.HTTPError:
            return False
        return (relay.get("linkage_relay_position{}") == head
                and worker.get("linkage_worker_consumer_lag{}") == 0
                and worker.get("linkage_worker_messages_received_total{}", 0) >= head)

    try:
        wait_until(caught_up, 120, what="relay and worker caught up, by their metrics")
    except AssertionError:
        print(scrape(f"http://127.0.0.1:{worker_port}/metrics"))
        print(scrape(f"http://127.0.0.1:{relay_port}/metrics"))
        print(stack.log("worker")[-3000:])
        raise
    relay = scrape(f"http://127.0.0.1:{relay_port}/metrics")
    assert relay["linkage_relay_lag{}"] == 0
    worker = scrape(f"http://127.0.0.1:{worker_port}/metrics")
    assert worker["linkage_worker_partitions{}"] >= 1
    metrics = scrape(f"{hub}/metrics")
    assert metrics["linkage_commands_total{action=report,outcome=ok}"] == 3
    assert metrics["linkage_events_appended_total{}"] == seeded + 4  # the seed was this hub's too
    assert metrics["linkage_event_store_head{}"] == head
    assert metrics["linkage_outbound_deliveries_total{outcome=delivered,subscription=command}"] == 1
    assert metrics["linkage_http_requests_total{method=POST,route=/api/incidents,status=201}"] == 3
    ready = httpx.get(f"{hub}/readyz", timeout=15)
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert set(checks) == {"store", "redis", "kafka"}
    assert all(check["ok"] for check in checks.values()), checks
