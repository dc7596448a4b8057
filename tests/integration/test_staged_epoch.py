"""The fan-out's staged epoch against a real Redis: a rebuilt epoch behind the stored one writes
nothing, and once it reaches the stored position it replaces the old epoch whole (every record
of its view, not only those its last batch touched)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from infra.distributed.redis_fanout import RedisFanout, RedisViewSource
from projections.envelope import Envelope
from streams.folding import fold_each, new_state

pytestmark = pytest.mark.integration
CENTERS = ["town"]


def raised(n: int) -> Envelope:
    return Envelope(n, f"alert-{n}", 1, "CameraAlert.Raised", "2027-01-01T00:00:00+00:00",
                    {"centers": CENTERS, "camera": f"cam-{n}", "grid": f"g-{n}",
                     "label": "person", "start_time": 1_800_000_000 + n * 100.0,
                     "score": 0.7, "kind": "camera"})


def test_a_rebuilt_epoch_is_held_back_until_it_catches_up_then_replaces_the_old_whole(
        redis_url: str) -> None:
    prefix = f"staged-{uuid.uuid4().hex[:8]}"
    events = [(0, raised(n)) for n in range(1, 11)]

    async def run() -> None:
        fanout = RedisFanout(redis_url, prefix=prefix)
        source = RedisViewSource(redis_url, CENTERS, prefix=prefix)
        try:
            old = new_state("town", "old")
            await fanout.publish("town", "old", fold_each(old, events[:8]), old.view)
            rebuilt = new_state("town", "new")
            await fanout.publish("town", "new", fold_each(rebuilt, events[:5]), rebuilt.view)
            assert fanout.staged == 1
            epoch, _, view = await source.snapshot("town")
            assert (epoch, view) == ("old", old.view)
            # From another fan-out (a restarted worker), one event past the old position.
            later = RedisFanout(redis_url, prefix=prefix)
            try:
                last = fold_each(rebuilt, events[5:9])
                assert len(last) == 4
                await later.publish("town", "new", last[-1:], rebuilt.view)
            finally:
                await later.close()
            epoch, seq, view = await source.snapshot("town")
            assert (epoch, seq) == ("new", rebuilt.seq)
            # The whole view, though the last write carried one delta.
            assert view == rebuilt.view and len(view["alerts"]) == 9
        finally:
            await fanout.close()
            await source.close()
            client = redis.Redis.from_url(redis_url)
            keys = list(client.scan_iter(f"{prefix}:*"))
            if keys:
                client.delete(*keys)
            client.close()

    asyncio.run(run())
