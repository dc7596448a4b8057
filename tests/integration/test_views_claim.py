"""One worker group per set of views (infra/distributed/views_claim.py), on a real Redis: a second
group refuses to start naming the first one's claim, and a group whose claim was taken stops
before it writes. Two groups with different LINKAGE_WORKER_IDs used to overwrite each other's
epochs (a full snapshot to every console at each switch)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from infra.distributed.redis_fanout import Keys, RedisFanout
from infra.distributed.views_claim import ViewsClaim, ViewsClaimed
from tests.integration.distributed import LINKAGE, Stack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"claim{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_a_second_group_is_refused_naming_the_first_and_one_group_shares_its_claim(
        redis_url: str, prefix: str) -> None:
    ViewsClaim(redis_url, prefix, "worker-a").take()
    ViewsClaim(redis_url, prefix, "worker-a").take()  # another process of the same group
    with pytest.raises(ViewsClaimed) as refused:
        ViewsClaim(redis_url, prefix, "worker-b").take()
    message = str(refused.value)
    assert "'worker-a'" in message and "'worker-b'" in message
    assert "LINKAGE_WORKER_ID" in message and prefix in message


def test_a_claim_that_lapsed_can_be_taken_by_another_group(redis_url: str, prefix: str) -> None:
    ViewsClaim(redis_url, prefix, "worker-a", ttl=0.3).take()  # and never renewed: group gone
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: not client.exists(Keys(prefix).owner), 10, 0.05, "the claim lapsed")
    client.close()
    ViewsClaim(redis_url, prefix, "worker-b").take()


def test_a_renewed_claim_outlives_its_ttl_and_a_taken_one_is_noticed(redis_url: str,
                                                                      prefix: str) -> None:
    lost: list[str] = []
    claim = ViewsClaim(redis_url, prefix, "worker-a", ttl=1.5, on_lost=lost.append)
    claim.take()
    claim.keep_renewing()  # from start-up on, as `linkage worker` does
    client = redis.Redis.from_url(redis_url)
    for _ in range(3):  # across several TTLs the claim stays worker-a's
        time.sleep(1.5)
        with pytest.raises(ViewsClaimed):
            ViewsClaim(redis_url, prefix, "worker-b").take()
    # Another group took the views (worker-a's claim had lapsed meanwhile, say): the next
    # renewal says so. Written in one step, so worker-a's thread cannot claim in between.
    client.hset(Keys(prefix).owner, mapping={"group": "worker-b", "by": "pid 1 on elsewhere"})
    wait_until(lambda: lost, 10, 0.05, "worker-a told it lost the views")
    assert "'worker-b'" in lost[0]
    asyncio.run(claim.close())
    client.close()


def test_a_group_whose_claim_was_taken_stops_before_writing(redis_url: str, prefix: str) -> None:
    lost: list[str] = []
    stalled = ViewsClaim(redis_url, prefix, "worker-a", ttl=0.3, on_lost=lost.append)
    stalled.take()
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: not client.exists(Keys(prefix).owner), 10, 0.05, "the claim lapsed")
    ViewsClaim(redis_url, prefix, "worker-b").take()  # while worker-a was stalled

    async def write_after_the_stall() -> None:
        fanout = RedisFanout(redis_url, prefix, claim=stalled)
        try:
            with pytest.raises(ViewsClaimed):
                await fanout.publish("130700", "epoch-a", [(1, [])], {"center": "130700"})
        finally:
            await fanout.close()
            await stalled.close()

    asyncio.run(write_after_the_stall())
    assert len(lost) == 1 and "'worker-b'" in lost[0]
    assert not client.exists(Keys(prefix).snapshot("130700"))  # nothing written
    client.close()


def test_a_second_worker_group_exits_naming_the_running_one(
        tmp_path: Path, postgres_dsn: str, pg_schema: str, redis_url: str,
        kafka_bootstrap: str) -> None:
    stack = Stack(tmp_path, postgres_dsn, pg_schema, redis_url, kafka_bootstrap)
    try:
        first = stack.env["LINKAGE_WORKER_ID"]
        stack.start("worker", "worker")
        client = redis.Redis.from_url(redis_url)
        owner = Keys(stack.prefix).owner
        wait_until(lambda: client.hget(owner, "group") == first.encode(), 60,
                   what="the first group's claim")
        client.close()

        second = subprocess.run([LINKAGE, "worker"], capture_output=True, text=True, timeout=120,
                                env={**stack.env, "LINKAGE_WORKER_ID": "worker-other"})
        assert second.returncode != 0
        assert f"claimed by worker group '{first}'" in second.stderr, second.stderr
        assert "'worker-other'" in second.stderr
        assert stack.processes["worker"].poll() is None, stack.log("worker")  # still running
    finally:
        stack.close()
