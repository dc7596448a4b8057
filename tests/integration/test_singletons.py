"""Singletons by lease, with real processes: two relays, two hubs (each with a sealer and an SLA
watcher) and a worker on real Tansu, PostgreSQL and Redis. One relay relays (each event is
produced once), one sealer seals (one chain that verifies), one SLA watcher escalates (each
overdue case once); SIGKILL the holders and the standbys take over.

Before leases two relays produced everything twice (296 events, 543 records)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from domain.incident import Actor
from infra.store.lease import holder
from tests.conftest import free_port
from tests.integration.distributed import LINKAGE, Stack, wait_until

pytestmark = pytest.mark.integration

OFFICER: Actor = {"user": "script", "role": "city_officer", "center": None}
RELAY_LEASE = "relay:linkage-relay"


@pytest.fixture
def stack(tmp_path: Path, postgres_dsn: str, pg_schema: str, redis_url: str,
          kafka_bootstrap: str) -> Iterator[Stack]:
    running = Stack(tmp_path, postgres_dsn, pg_schema, redis_url, kafka_bootstrap)
    # Sweep for overdue cases twice a second; a second escalation would be due an hour later.
    running.env.update(LINKAGE_SLA_INTERVAL="0.5", LINKAGE_SLA_GRACE_SECONDS="3600",
                       LINKAGE_SEAL_CHECKPOINT_EVERY="5")
    yield running
    running.close()


def holder_pid(stack: Stack, lease: str) -> int | None:
    """The pid of the process that holds a lease (from its session's application_name)."""
    name = holder(stack.postgres_dsn, lease, stack.schema)
    return int(name.split(" pid ")[1].split()[0]) if name else None


def process_holding(stack: Stack, lease: str, among: tuple[str, ...]) -> str | None:
    pid = holder_pid(stack, lease)
    return next((n for n in among if n in stack.processes and stack.processes[n].pid == pid),
                None)


def start_hub(stack: Stack, name: str) -> None:
    stack.start(name, "serve", "--mode", "distributed", "--port", str(free_port()),
                LINKAGE_DATA_DIR=str(stack.root / name))
    wait_until(lambda: "Uvicorn running" in stack.log(name)
               or stack.processes[name].poll() is not None, 90, what=f"{name} listening")
    assert stack.processes[name].poll() is None, stack.log(name)


def overdue_cases(stack: Stack, count: int) -> list[str]:
    """Cases dispatched with a due time a minute ago and acknowledged: the SLA watcher escalates
    each once (the next rung is an hour later)."""
    due = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    grid = stack.jurisdiction.grids()[0].id
    ids = []
    for i in range(count):
        incident = stack.service.report(actor=OFFICER, grid=grid, source="hotline",
                                        category="noise", severity="routine",
                                        description=f"overdue {i}")
        stack.service.act(str(incident.id), "accept", actor=OFFICER)
        stack.service.act(str(incident.id), "dispatch", actor=OFFICER, due=due,
                          assignee={"kind": "department", "id": "water_affairs"})
        # Acknowledged: the step being timed is now the resolve, due a minute ago.
        stack.service.act(str(incident.id), "acknowledge", actor=OFFICER)
        ids.append(str(incident.id))
    return ids


def escalations(stack: Stack) -> Counter[str]:
    with psycopg.connect(stack.postgres_dsn) as conn:
        rows = conn.execute(f"SELECT originator_id::text FROM {stack.schema}.linkage_events "
                            "WHERE topic LIKE '%%Incident.Escalated'").fetchall()
    return Counter(row[0] for row in rows)


def produced(stack: Stack) -> Counter[int]:
    """How many records of each notification id the topic holds (read from the beginning)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> Counter[int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            topic = stack.env["LINKAGE_KAFKA_TOPIC"]
            await consumer.topics()
            partitions = [TopicPartition(topic, p)
                          for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            counts: Counter[int] = Counter()
            async def behind() -> bool:
                return any([await consumer.position(tp) < end for tp, end in ends.items()])

            while await behind():
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        counts[int(dict(record.headers)["notification_id"])] += 1
            return counts
        finally:
            await consumer.stop()

    return asyncio.run(read())


def each_event_produced_once(stack: Stack) -> bool:
    last = stack.service.recorder.max_notification_id() or 0
    counts = produced(stack)
    if set(counts) != set(range(1, last + 1)):
        return False  # not there yet (a liveness wait)
    assert max(counts.values()) == 1, {n: c for n, c in counts.items() if c > 1}
    return True


def chain_verifies(stack: Stack) -> bool:
    result = subprocess.run([LINKAGE, "audit", "verify", "--store", "postgres",
                             "--postgres-schema", stack.schema, "--strict"], env=stack.env,
                            capture_output=True, text=True, timeout=60)
    assert "TAMPERED" not in result.stderr, result.stderr
    return result.returncode == 0


def settled(stack: Stack, cases: list[str]) -> None:
    """Every overdue case escalated, every event on the topic, every event sealed."""
    wait_until(lambda: all(escalations(stack)[c] for c in cases), 120,
               what="every overdue case escalated")
    wait_until(lambda: each_event_produced_once(stack), 120, 0.5, "every event on the topic")
    wait_until(lambda: chain_verifies(stack), 60, 0.5, "every event sealed")
    counts = escalations(stack)
    assert all(counts[c] == 1 for c in cases), counts


@pytest.mark.slow  # tens of seconds: CI runs it, a plain `make test` does not
def test_one_relay_sealer_and_sla_watcher_run_and_standbys_take_over_after_sigkill(
        stack: Stack) -> None:
    relays = ("relay1", "relay2")
    for name in relays:  # at the same moment: they race for the lease
        stack.start(name, "relay")
    stack.start("worker", "worker")
    start_hub(stack, "hub1")
    hubs = ("hub1", "hub2")
    wait_until(lambda: process_holding(stack, "sealer", hubs) == "hub1"
               and process_holding(stack, "sla-watcher", hubs) == "hub1", 60,
               what="hub1 holds the sealer and SLA watcher leases")
    start_hub(stack, "hub2")  # a second sealer and SLA watcher, standing by

    first = overdue_cases(stack, 4)
    settled(stack, first)
    active = process_holding(stack, RELAY_LEASE, relays)
    assert active is not None
    assert [n for n in relays if "lease relay:linkage-relay taken" in stack.log(n)] == [active]
    assert "lease sealer taken" not in stack.log("hub2")
    assert "lease sla-watcher taken" not in stack.log("hub2")

    # SIGKILL the holders; the standbys take over and carry new work.
    stack.kill(active, signal.SIGKILL)
    stack.kill("hub1", signal.SIGKILL)
    standby = next(n for n in relays if n != active)
    second = overdue_cases(stack, 3)
    wait_until(lambda: process_holding(stack, RELAY_LEASE, relays) == standby, 60,
               what="the standby relay holds the lease")
    wait_until(lambda: process_holding(stack, "sealer", hubs) == "hub2"
               and process_holding(stack, "sla-watcher", hubs) == "hub2", 60,
               what="hub2 holds the sealer and SLA watcher leases")
    settled(stack, first + second)
