"""A worker that crashed after publishing a batch's deltas to Redis, but before writing its table,
replays the same events in a different batching: consoles and the Redis snapshot must still end
with every change. This holds because the worker gives one seq per changing event whatever the
batching, and the fan-out drops (epoch, seq)s it already has. (Folding a run of alerts into one
delta per batch broke it; a review caught that, and this is its regression test.)"""

from __future__ import annotations

import asyncio
import copy
import uuid

import orjson
import pytest
import redis

from infra.distributed.redis_fanout import Keys, RedisFanout
from projections.center_view import new_view
from projections.envelope import Envelope
from projections.patch import apply_changes
from streams.folding import fold_each, new_state

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

    async def run() -> None:
        fanout = RedisFanout(redis_url, prefix=prefix)
        first = copy.deepcopy(base)  # a batch of five published, then a crash: no table write
        await fanout.publish("town", "epoch-1", fold_each(first, events[:5]), first["view"])
        replay = copy.deepcopy(base)  # after the restart one batch holds all ten
        await fanout.publish("town", "epoch-1", fold_each(replay, events), replay["view"])
        await fanout.close()
        client = redis.Redis.from_url(redis_url)
        try:
            console = new_view("town")
            for _id, fields in client.xrange(Keys(prefix).deltas("town")):
                apply_changes(console, orjson.loads(fields[b"frame"])["changes"])
            snapshot = orjson.loads(client.hget(Keys(prefix).snapshot("town"), "view"))  # type: ignore[arg-type]
        finally:
            client.delete(Keys(prefix).deltas("town"), Keys(prefix).snapshot("town"))
        assert sorted(snapshot["alerts"]) == sorted(replay["view"]["alerts"])
        assert console["alerts"] == replay["view"]["alerts"]
        assert len(console["alerts"]) == 10

    asyncio.run(run())
