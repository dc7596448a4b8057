"""The worker's events consumer (streams/router.py) on a real broker (Tansu): one worker of a
group routes the events topic, another takes over from its last commit when it stops, and
every event reaches its center's by-center partition in log order."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from eventsourcing.persistence import Notification

from infra.distributed.relay import TOPIC_CONFIGS, encode, ensure_topic
from projections.patch import Change, View
from streams.app import WorkerApp, WorkerConfig, create_app
from streams.routing import copies

pytestmark = pytest.mark.integration


class NoFanout:
    async def publish(self, center: str, epoch: str, deltas: list[tuple[int, list[Change]]],
                      view: View) -> None:
        pass


def _stored(n: int) -> tuple[bytes, bytes, Any]:
    """The relay's record of the n-th event: a report to the city."""
    state = {"centers": ["city"], "grid": "g1", "actor": {"user": "u"}, "description": "d",
             "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00"}}
    return encode(Notification(id=n, originator_id=uuid.uuid5(uuid.NAMESPACE_OID, str(n)),
                               originator_version=1, topic="domain.incident:Incident.Reported",
                               state=orjson.dumps(state)))


async def _produce(bootstrap: str, topic: str, ids: range) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, headers in map(_stored, ids):
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def _routed(bootstrap: str, topic: str, partitions: int) -> list[int]:
    """The notification ids the city's by-center records carry, in the order they were sent."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        ids: list[int] = []
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    center, events = copies(record.value)
                    assert center == "city"
                    ids += [event.notification_id for _, event in events]
        return ids
    finally:
        await consumer.stop()


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def _start(app: WorkerApp) -> asyncio.Task[None]:
    await app.producer.start()
    return asyncio.create_task(app.event_router.run())


async def _stop(app: WorkerApp, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await app.producer.stop()


@pytest.mark.slow  # tens of seconds: CI runs it, a plain `make test` does not
async def test_one_worker_of_a_group_routes_and_another_takes_over_from_its_commit(
        tmp_path: Path, kafka_bootstrap: str) -> None:
    tag = uuid.uuid4().hex[:8]
    topic = f"events-router-{tag}"
    await ensure_topic(kafka_bootstrap, topic, 1, 1, TOPIC_CONFIGS)
    options = {"broker_session_timeout": 6.0, "broker_rebalance_timeout": 6.0,
               "broker_heartbeat_interval": 1.0}
    apps = [create_app(WorkerConfig(app_id=f"router-{tag}", bootstrap=kafka_bootstrap,
                                    topic=topic, centers=frozenset({"city"}), partitions=2,
                                    datadir=tmp_path / name, options=options), NoFanout())
            for name in ("a", "b")]
    first, second = routers = tuple(app.event_router for app in apps)
    by_center = f"router-{tag}-by-center"
    tasks = [await _start(app) for app in apps]
    try:
        async def one_owner() -> bool:  # both joined, and the partition is one's alone
            return (first.consumer is not None and second.consumer is not None
                    and len(first.consumer.assignment()) + len(second.consumer.assignment()) == 1)

        async def settled() -> bool:  # ... for three heartbeats: no rebalance under way
            for _ in range(30):
                if not await one_owner():
                    return False
                await asyncio.sleep(0.1)
            return True
        await _until(settled, 60, "the group to give the partition to one worker")
        assert first.consumer is not None
        owner, standby = (0, 1) if first.consumer.assignment() else (1, 0)
        await _produce(kafka_bootstrap, topic, range(1, 41))

        async def owner_committed() -> bool:
            return routers[owner].committed.get(TopicPartition(topic, 0)) == 40
        await _until(owner_committed, 60, "the owner to route and commit the events")
        assert routers[owner].received == 40
        assert routers[standby].received == 0  # read nothing: not its partition

        await _stop(apps[owner], tasks[owner])  # leaves the group: the standby takes over
        await _produce(kafka_bootstrap, topic, range(41, 61))

        async def taken_over() -> bool:
            return routers[standby].committed.get(TopicPartition(topic, 0)) == 60
        await _until(taken_over, 60, "the standby to take over")
        assert routers[standby].received == 20  # from the owner's commit on
        ids = await _routed(kafka_bootstrap, by_center, 2)
        # Every event reached the city, once each here, in log order. (After a crash between a
        # produce and its commit, events repeat: the fold skips ids it applied.)
        assert ids == list(range(1, 61))
    finally:
        for app, task in zip(apps, tasks, strict=False):
            if not task.done():
                await _stop(app, task)


@pytest.mark.slow  # tens of seconds: CI runs it, a plain `make test` does not
async def test_an_upgraded_worker_routes_from_where_the_route_agent_left_off(
        tmp_path: Path, kafka_bootstrap: str) -> None:
    tag = uuid.uuid4().hex[:8]
    topic, group = f"events-upgrade-{tag}", f"upgrade-{tag}"
    await ensure_topic(kafka_bootstrap, topic, 1, 1, TOPIC_CONFIGS)
    await _produce(kafka_bootstrap, topic, range(1, 41))
    # What the faust `route` agent of the same group had committed before the upgrade.
    tp = TopicPartition(topic, 0)
    agent = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group,
                             enable_auto_commit=False)
    await agent.start()
    try:
        agent.assign([tp])
        await agent.commit({tp: 25})
    finally:
        await agent.stop()
    app = create_app(WorkerConfig(app_id=group, bootstrap=kafka_bootstrap, topic=topic,
                                  centers=frozenset({"city"}), partitions=2,
                                  datadir=tmp_path), NoFanout())
    router = app.event_router
    task = await _start(app)
    try:
        async def caught_up() -> bool:
            return router.committed.get(tp) == 40
        await _until(caught_up, 60, "the router to route the rest of the topic")
    finally:
        await _stop(app, task)
    assert router.received == 15
    assert await _routed(kafka_bootstrap, f"{group}-by-center", 2) == list(range(26, 41))
