"""A distributed rebuild of the views the hubs serve (`linkage replay --mode distributed`).

It starts a new worker generation (infra/distributed/generation.py): the next `linkage worker`
folds the events topic from its first record under new epochs, which the fan-out holds back
while they are behind the stored ones, so hubs keep serving the old epochs and consoles never
see a half-rebuilt view. When the topic no longer starts at the first event (retention), the
relay's position is reset so that the relay produces the whole log again (consumers dedupe by
notification id). Then `progress` reads, per center, which epoch Redis serves.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from infra.distributed.redis_client import async_client
from infra.distributed.redis_fanout import Keys

# The topics faust makes for an app id (streams/app.py): left to the operator to delete.
OLD_TOPICS = ("{app}-by-center", "{app}-center-state-changelog", "{app}-__assignor-__leader")


class WorkersRunning(RuntimeError):
    """The worker group still has members: a rebuild needs every worker stopped."""


async def group_members(bootstrap: str, group: str) -> int | None:
    """Members of a consumer group, or None when the broker cannot answer the request."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        responses = await admin.describe_consumer_groups([group])
    except (KafkaError, ValueError, OSError):
        return None
    finally:
        await admin.close()
    # DescribeGroups v0..: groups as (error, group id, state, protocol type, protocol, members, ...)
    return sum(len(g[5]) for r in responses for g in r.groups if g[1] == group)


async def log_start(bootstrap: str, topic: str) -> int | None:
    """The first offset the events topic still holds, or None when there is no such topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fresh metadata
        if not consumer.partitions_for_topic(topic):
            return None
        starts = await consumer.beginning_offsets([TopicPartition(topic, 0)])
        return int(min(starts.values()))
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Served:
    """What Redis serves for a center: its epoch and the notification id its view reached."""

    epoch: str
    position: int


async def served(redis_url: str, prefix: str, centers: list[str]) -> dict[str, Served]:
    """Per center with a snapshot in Redis, the epoch and position hubs serve."""
    keys = Keys(prefix)
    redis = async_client(redis_url)
    try:
        out: dict[str, Served] = {}
        for center in centers:
            epoch, position = await redis.hmget(keys.snapshot(center), ["epoch", "position"])
            if epoch is not None:
                text = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
                out[center] = Served(text, int(position or 0))
        return out
    finally:
        await redis.aclose()


def replaced(before: dict[str, Served], now: dict[str, Served]) -> set[str]:
    """The centers that served an epoch before the rebuild and now serve another."""
    return {c for c, old in before.items() if c in now and now[c].epoch != old.epoch}


def old_topics(app_id: str) -> list[str]:
    return [name.format(app=app_id) for name in OLD_TOPICS]
