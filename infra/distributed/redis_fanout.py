"""Redis fan-out: how deltas travel from faust workers to every hub.

Per center, under a prefix (default `linkage`), the center in braces as a Redis Cluster hash
tag so that a center's keys share one slot (all names come from `Keys`):
- `<prefix>:snapshot:{<center>}`: a hash {epoch, seq, view, position} — the view after `seq`;
- `<prefix>:deltas:{<center>}`: a capped stream of recent delta frames, entry id `<seq>-1`;
- `<prefix>:console:{<center>}`: a pub/sub channel carrying each delta frame.
One Lua script writes all three atomically and only when `seq` is new for the epoch,
so a worker that repeats a write after a crash changes nothing and publishes nothing.
The URL may name a Redis Cluster (`redis+cluster://`, see redis_client.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import orjson
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from command_center.hub import Hub
from command_center.protocol import Cursor, Frame, delta_frame, missed
from infra.distributed.redis_client import async_client, is_cluster, node_client
from projections.center_view import new_view
from projections.patch import Change, View

log = logging.getLogger(__name__)

# KEYS: snapshot, stream, channel. ARGV: epoch, maxlen, last seq, view after it, the view's
# position (last notification id folded), then (seq, frame) pairs in increasing seq. A delta at
# or below the stored seq of the same epoch was written before (a worker replaying after a
# crash) and is skipped; the snapshot always moves with the stream, so its seq is the stream's
# last id. A new epoch (a rebuild) whose view is behind the stored epoch's position is still
# catching up: nothing is written (-1), and hubs keep serving the old epoch until the new one
# reaches it; consoles never see a half-rebuilt view.
_WRITE = """
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'position')
local have = -1
if cur[1] == ARGV[1] and cur[2] then
  have = tonumber(cur[2])
elseif cur[1] and tonumber(cur[3] or '0') > tonumber(ARGV[5]) then
  return -1
else
  redis.call('DEL', KEYS[2])
end
local written = 0
for i = 6, #ARGV, 2 do
  if tonumber(ARGV[i]) > have then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], ARGV[i] .. '-1', 'frame', ARGV[i + 1])
    redis.call('PUBLISH', KEYS[3], ARGV[i + 1])
    written = written + 1
  end
end
if tonumber(ARGV[3]) > have then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', ARGV[3], 'view', ARGV[4],
             'position', ARGV[5])
end
return written
"""


class Keys:
    """Every Redis name the fan-out uses: one place to change them."""

    def __init__(self, prefix: str = "linkage") -> None:
        self.prefix = prefix

    def snapshot(self, center: str) -> str:
        return f"{self.prefix}:snapshot:{{{center}}}"

    def deltas(self, center: str) -> str:
        return f"{self.prefix}:deltas:{{{center}}}"

    def channel(self, center: str) -> str:
        return f"{self.prefix}:console:{{{center}}}"

    @property
    def channels(self) -> str:
        return f"{self.prefix}:console:*"

    def center_of(self, channel: str) -> str:
        return channel[len(self.prefix) + len(":console:"):].removeprefix("{").removesuffix("}")


class RedisFanout:
    """The worker's side: store and publish each delta exactly once per (epoch, seq)."""

    def __init__(self, url: str, prefix: str = "linkage", maxlen: int = 1000,
                 retry_every: float = 0.5) -> None:
        self.url = url
        self.keys = Keys(prefix)
        self.maxlen = maxlen
        self.retry_every = retry_every
        self._redis = async_client(url)
        self._write = self._redis.register_script(_WRITE)
        self.written = 0
        self.staged = 0  # batches held back while a new epoch catches up with the old

    async def publish(
        self, center: str, epoch: str, deltas: list[tuple[int, list[Change]]], view: View
    ) -> None:
        """Store and publish consecutive deltas; waits for Redis rather than dropping them."""
        k = self.keys
        seq = deltas[-1][0]
        args: list[Any] = [epoch, self.maxlen, seq, orjson.dumps(view),
                           int(view.get("position") or 0)]
        for delta_seq, changes in deltas:
            args += [delta_seq, delta_frame(center, epoch, delta_seq, changes)]
        while True:
            try:
                written = await self._write(
                    keys=[k.snapshot(center), k.deltas(center), k.channel(center)], args=args)
                self.staged += written < 0
                self.written += max(0, written)
                return
            except (RedisError, OSError) as exc:
                log.warning("Redis at %s failed (%s); retrying delta %s/%d", self.url, exc,
                            center, seq)
                await asyncio.sleep(self.retry_every)

    async def close(self) -> None:
        await self._redis.aclose()


class RedisViewSource:
    """The hub's side: snapshots and missed deltas from Redis (a `ViewSource`)."""

    def __init__(self, url: str, centers: Iterable[str], prefix: str = "linkage") -> None:
        self.keys = Keys(prefix)
        self.centers = frozenset(centers)
        self._redis = async_client(url)
        self._transactions = not is_cluster(url)  # a cluster pipeline cannot be one
        # Consoles that connect together share one read of a center's snapshot.
        self._reading: dict[str, asyncio.Future[tuple[str, int, View]]] = {}

    def has_center(self, center: str) -> bool:
        return center in self.centers

    async def state(self, center: str) -> tuple[str, int]:
        epoch, seq = await self._redis.hmget(self.keys.snapshot(center), ["epoch", "seq"])
        return (epoch.decode(), int(seq)) if epoch is not None else ("", 0)

    async def snapshot(self, center: str) -> tuple[str, int, View]:
        reading = self._reading.get(center)
        if reading is None:
            reading = asyncio.ensure_future(self._read_snapshot(center))
            self._reading[center] = reading
            reading.add_done_callback(lambda _: self._reading.pop(center, None))
        return await asyncio.shield(reading)

    async def _read_snapshot(self, center: str) -> tuple[str, int, View]:
        epoch, seq, view = await self._redis.hmget(self.keys.snapshot(center),
                                                   ["epoch", "seq", "view"])
        if epoch is None:  # nothing projected for this center yet
            return "", 0, new_view(center)
        return epoch.decode(), int(seq), orjson.loads(view)

    async def history(self, center: str, epoch: str, seq: int) -> list[Frame] | None:
        """Every delta after seq, or None when Redis does not hold them all."""
        # Both keys share a slot; without a transaction (cluster) a delta written between the
        # two reads leaves the frames past `current`, which `missed` refuses: a resync.
        async with self._redis.pipeline(transaction=self._transactions) as pipe:
            pipe.hmget(self.keys.snapshot(center), ["epoch", "seq"])
            pipe.xrange(self.keys.deltas(center), min=f"({seq}-1", max="+")
            (current_epoch, current_seq), entries = await pipe.execute()
        if current_epoch is None:
            return None
        held = (Frame(epoch, int(entry_id.split(b"-", 1)[0]), fields[b"frame"].decode())
                for entry_id, fields in entries)
        return missed((current_epoch.decode(), int(current_seq)), epoch, seq, held)

    async def close(self) -> None:
        await self._redis.aclose()


class _PubSub(PubSub):
    """Counts (re)connections: redis-py resubscribes silently, and we must catch up then."""

    connects = 0

    async def on_connect(self, connection: Any) -> None:
        await super().on_connect(connection)
        self.connects += 1


class RedisSubscriber:
    """Feeds a hub from the pub/sub channels; after any reconnection, catches up from Redis."""

    def __init__(self, url: str, hub: Hub, source: RedisViewSource, prefix: str = "linkage",
                 check_every: float = 5.0) -> None:
        self.url = url
        self.hub = hub
        self.source = source
        self.keys = Keys(prefix)
        self.check_every = check_every
        self.cursor = Cursor()  # what was last handed to the hub, per center
        self.received = 0
        self.ready = asyncio.Event()

    def on_message(self, channel: bytes, data: bytes) -> None:
        center = self.keys.center_of(channel.decode())
        text = data.decode()
        head = orjson.loads(text)
        self.received += 1
        frame = Frame(head["epoch"], head["seq"], text)
        if self.cursor.accept(center, frame):
            self.hub.publish_frame(center, frame)

    async def catch_up(self) -> None:
        """Hand the hub what pub/sub may have missed: deltas, or a marker that forces a resync."""
        for center in self.hub.centers():
            last = self.cursor.last.get(center)
            frames = await self.source.history(center, *last) if last else None
            state = await self.source.state(center) if frames is None else None
            for frame in self.cursor.caught_up(center, frames, state):
                self.hub.publish_frame(center, frame)

    async def run(self) -> None:
        while True:
            client = node_client(self.url)
            pubsub = _PubSub(client.connection_pool)
            try:
                await pubsub.psubscribe(self.keys.channels)
                await self._listen(pubsub)
            except (RedisError, OSError) as exc:
                self.ready.clear()
                log.warning("Redis at %s failed (%s); resubscribing", self.url, exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _listen(self, pubsub: _PubSub) -> None:
        seen = 0
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.check_every
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if pubsub.connects != seen or loop.time() >= next_check:
                seen = pubsub.connects
                next_check = loop.time() + self.check_every
                await self.catch_up()
                self.ready.set()
            if message is not None and message["type"] == "pmessage":
                self.on_message(message["channel"], message["data"])
