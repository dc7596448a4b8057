"""A worker that crashed after publishing a batch's deltas to Redis, but before writing its table,
replays the same events in a different batching: consoles and the Redis snapshot must still end
with every change. This holds because the worker gives one seq per changing event whatever the
batching, and the fan-out drops (epoch, seq)s it already has. (Folding a run of alerts into one
delta per batch broke it; a review caught that, and this is its regression test.)"""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import orjson
import pytest
import redis

from infra.distributed.redis_fanout import Keys, RedisFanout, RedisViewSource
from projections.center_view import new_view
from projections.envelope import Envelope
from projections.patch import apply_changes
from streams.folding import CenterState, fold_each, new_state

pytestmark = pytest.mark.integration
CENTERS = ["town", "district", "city"]


def raised(n: int) -> Envelope:
    return Envelope(n, f"alert-{n}", 1, "CameraAlert.Raised", "2027-01-01T00:00:00+00:00",
                    {"centers": CENTERS, "camera": f"cam-{n}", "grid": f"g-{n}",
                     "label": "person", "start_time": 1_800_000_000 + n * 100.0,
                     "score": 0.7, "kind": "camera"})


def test_a_replay_batched_otherwise_after_a_crash_loses_nothing(redis_url: str) -> None:
    prefix = f"replay-{uuid.uuid4().hex[:8]}"
    events = [(0, raised(n)) for n in range(1, 11)]
    base = new_state("town", "epoch-1")
    # The same events, split otherwise, get the same seqs and changes.
    split, whole = copy.deepcopy(base), copy.deepcopy(base)
    assert fold_each(split, events[:5]) + fold_each(split, events[5:]) == fold_each(whole, events)

    def publish(fanout: RedisFanout, state: CenterState, deltas: list[Any]) -> Any:
        return fanout.publish("town", "epoch-1", deltas, state.view)

    async def run() -> None:
        fanout = RedisFanout(redis_url, prefix=prefix)
        first = copy.deepcopy(base)  # a batch of five published, then a crash: no table write
        await publish(fanout, first, fold_each(first, events[:5]))
        replay = copy.deepcopy(base)  # after the restart one batch holds all ten
        await publish(fanout, replay, fold_each(replay, events))
        await fanout.close()
        source = RedisViewSource(redis_url, ["town"], prefix=prefix)
        _, seq, snapshot = await source.snapshot("town")
        await source.close()
        client = redis.Redis.from_url(redis_url)
        try:
            console = new_view("town")
            for _id, fields in client.xrange(Keys(prefix).deltas("town")):
                apply_changes(console, orjson.loads(fields[b"frame"])["changes"])
        finally:
            client.delete(*client.keys(f"{prefix}:*"))
        assert seq == replay.seq
        assert snapshot == replay.view
        assert console["alerts"] == replay.view["alerts"]
        assert len(console["alerts"]) == 10

    asyncio.run(run())
