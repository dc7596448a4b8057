"""Distributed mode at city scale: 20,000 open incidents under one city, through relay, Kafka,
the faust worker, Redis and a hub. The worker used to die writing one changelog record per view
(MessageSizeTooLargeError past ~2,400 open cases); now no record grows with the open cases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from websockets.sync.client import connect

from tests.conftest import free_port
from tests.integration.distributed import Stack, canonical, wait_until
from tests.scale import report_many

pytestmark = [pytest.mark.integration, pytest.mark.slow]
OPEN = 20_000
KIB = 1024


@pytest.fixture
def stack(tmp_path: Path, postgres_dsn: str, pg_schema: str, redis_url: str,
          kafka_bootstrap: str) -> Iterator[Stack]:
    running = Stack(tmp_path, postgres_dsn, pg_schema, redis_url, kafka_bootstrap)
    yield running
    running.close()


def largest_changelog_record(bootstrap: str, topic: str, partitions: int) -> tuple[int, int]:
    """(records, bytes of the largest value) of a topic, read from the start to its end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> tuple[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            count = biggest = 0

            async def behind() -> bool:
                return any([await consumer.position(tp) < ends[tp] for tp in parts])

            while await behind():
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        count += 1
                        biggest = max(biggest, len(record.value or b""))
            return count, biggest
        finally:
            await consumer.stop()

    return asyncio.run(read())


def largest_redis_record(url: str, prefix: str) -> int:
    """The largest value under the prefix: a string key, a whole set or hash, a stream entry."""
    client = redis.Redis.from_url(url)
    try:
        biggest = 0
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                size = int(client.strlen(key))
            elif kind == "set":
                size = sum(len(m) for m in client.smembers(key))
            elif kind == "hash":
                size = sum(len(k) + len(v) for k, v in client.hgetall(key).items())
            elif kind == "stream":  # capped at LINKAGE_HISTORY_SIZE entries: each is a record
                size = max((len(f[b"frame"]) for _, f in client.xrange(key)), default=0)
            else:
                continue
            biggest = max(biggest, size)
        return biggest
    finally:
        client.close()


@pytest.mark.timeout(1200)
def test_a_city_with_20000_open_incidents_never_stops_the_worker(stack: Stack) -> None:
    city = stack.jurisdiction.root.id
    ids = report_many(stack.service, [g.id for g in stack.jurisdiction.grids()],
                      stack.jurisdiction.centers_for, OPEN)
    stack.start("relay", "relay")
    stack.start("worker", "worker")
    port = free_port()
    stack.start("hub", "serve", "--mode", "distributed", "--port", str(port))
    views, seqs = stack.replay()

    def converged() -> bool:
        assert stack.processes["worker"].poll() is None, stack.log("worker")[-3000:]
        state = stack.redis_state()
        return all(state[c][1] == seqs[c] for c in stack.centers)

    wait_until(converged, 900, every=2.0, what="Redis views at the replay's seqs")
    state = stack.redis_state()
    for center in stack.centers:
        assert canonical(state[center][2]) == canonical(views[center]), center
    worker_log = stack.log("worker")
    assert stack.processes["worker"].poll() is None
    for sign in ("MessageSizeTooLarge", "Traceback", "crashed"):
        assert sign not in worker_log, worker_log[-3000:]

    topic = f"{stack.env['LINKAGE_WORKER_ID']}-center-state-changelog"
    records, biggest = largest_changelog_record(stack.kafka_bootstrap, topic, stack.partitions)
    assert records > OPEN and biggest <= 64 * KIB
    assert largest_redis_record(stack.redis_url, stack.prefix) <= 64 * KIB

    wait_until(lambda: "Uvicorn running" in stack.log("hub"), 60, what="hub listening")
    with connect(f"ws://127.0.0.1:{port}/ws/console?center={city}&token={stack.token}",
                 max_size=None) as ws:
        ws.send('{"type":"hello"}')
        frame = ws.recv(timeout=30)
    assert len(frame.encode() if isinstance(frame, str) else frame) < 256 * KIB
    assert canonical(orjson.loads(frame)["view"]) == canonical(views[city])

    def listed() -> list[str]:
        found: list[str] = []
        cursor = None
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {stack.token}"}) as client:
            while True:
                params = {"center": city, "limit": 500, **({"cursor": cursor} if cursor else {})}
                page = client.get("/api/incidents", params=params).json()
                found += [item["id"] for item in page["items"]]
                cursor = page["next"]
                if cursor is None:
                    return found

    found = wait_until(lambda: (f := listed()) and len(f) >= OPEN and f, 120,
                       what="every incident in the read model")
    assert len(found) == OPEN and set(found) == set(ids)
