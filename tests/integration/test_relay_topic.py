"""The relay's events topic keeps one partition: an empty one auto-created with the broker's default
is made again; a topic that holds records and has more partitions is refused. Real Tansu."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.bootstrap import build_relay
from infra.distributed.relay import end_offsets
from infra.settings import Settings

pytestmark = pytest.mark.integration


async def make_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def produce_one(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"kept", partition=2)
    finally:
        await producer.stop()


def relay_for(tmp_path: Path, dsn: str, schema: str, bootstrap: str, topic: str):  # type: ignore[no-untyped-def]
    return build_relay(Settings(store="postgres", postgres_dsn=dsn, postgres_schema=schema,
                                kafka_bootstrap=bootstrap, kafka_topic=topic,
                                kafka_idempotence=False, data_dir=tmp_path / "var"))


def test_an_empty_topic_with_the_brokers_default_partitions_is_recreated_with_one(
    tmp_path: Path, postgres_dsn: str, pg_schema: str, kafka_bootstrap: str,
) -> None:
    topic = f"events-{uuid.uuid4().hex[:8]}"
    asyncio.run(make_topic(kafka_bootstrap, topic, 4))  # as a consumer's metadata request does
    relay = relay_for(tmp_path, postgres_dsn, pg_schema, kafka_bootstrap, topic)
    try:
        assert asyncio.run(relay._watermarks({})) == {0: 0}
        assert asyncio.run(end_offsets(kafka_bootstrap, topic)) == {0: 0}
    finally:
        relay.store.close()


def test_a_topic_with_records_and_more_partitions_is_refused_not_recreated(
    tmp_path: Path, postgres_dsn: str, pg_schema: str, kafka_bootstrap: str,
) -> None:
    topic = f"events-{uuid.uuid4().hex[:8]}"
    asyncio.run(make_topic(kafka_bootstrap, topic, 4))
    asyncio.run(produce_one(kafka_bootstrap, topic))
    relay = relay_for(tmp_path, postgres_dsn, pg_schema, kafka_bootstrap, topic)
    try:
        with pytest.raises(RuntimeError, match="has 4 partitions; expected 1"):
            asyncio.run(relay._watermarks({}))
        assert asyncio.run(end_offsets(kafka_bootstrap, topic))[2] == 1  # nothing was deleted
    finally:
        relay.store.close()
