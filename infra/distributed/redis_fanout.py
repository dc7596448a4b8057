"""Redis fan-out: how deltas travel from faust workers to every hub.

Per center, under a prefix (default `linkage`), the center in braces as a Redis Cluster hash
tag so that every key of a center shares one slot (all names come from `Keys`):
- `<prefix>:snapshot:{<center>}`: a hash {epoch, seq, position}: the view's records are at
  delta `seq`, which folded the center's events up to notification id `position`;
- `<prefix>:record:{<center>}:<record>`: one record of the view (projections/records.py: one
  queue entry, one alert, the recent feed, ...), so no key grows with the number of open
  cases, and `<prefix>:records:{<center>}`, the set of the record names;
- `<prefix>:deltas:{<center>}`: a capped stream of recent delta frames, entry id `<seq>-1`;
- `<prefix>:console:{<center>}`: a pub/sub channel carrying each delta frame.
One Lua script writes them atomically and only when `seq` is new for the epoch, so a worker
that repeats a write after a crash changes nothing and publishes nothing; another reads a
snapshot atomically. Each script is given every key it touches (Redis Cluster requires it), so
the record names are read first and the script refuses names that changed meanwhile.
A new epoch (a rebuild) reaches Redis only once its view caught up with the stored epoch's
position: until then hubs keep serving the old epoch, and consoles never see a half-rebuilt
view. The URL may name a Redis Cluster (`redis+cluster://`, see redis_client.py).
`<prefix>:views-owner` names the worker group that writes them (`views_claim`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, Protocol

import orjson
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from command_center.hub import Hub
from command_center.protocol import Cursor, Frame, delta_frame, missed
from infra.distributed.redis_client import async_client, is_cluster, node_client
from projections.center_view import new_view
from projections.patch import Change, View
from projections.records import record_value, touched, view_from_records, view_records

log = logging.getLogger(__name__)

# What the write script returns instead of a count of deltas written.
STAGED = -1  # a new epoch still behind the stored one: nothing written
WHOLE = -2  # a new epoch replaces the stored one: send the whole view and the old names
STALE = -3  # the old record names given are not those stored any more: read them again

# KEYS: snapshot, stream, channel, record names, then the key of each record given, then the
# key of each old record given. ARGV: epoch, maxlen, last seq, the view's position, number of
# records R, number of old records O, "1" when the records are the whole view, then R (name,
# value) pairs (value "": deleted) as they are after the last seq, then the O record names
# stored now, then (seq, frame) pairs in increasing seq. A delta at or below the stored seq of
# the same epoch was written before (a worker replaying after a crash) and is skipped; the
# records always move with the stream, so the snapshot's seq is the stream's last id. A new
# epoch is written only once its position reached the stored epoch's, and then replaces it
# whole: the old epoch's stream and records go.
_WRITE = """
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'position')
local records, old = tonumber(ARGV[5]), tonumber(ARGV[6])
local names = 7 + 2 * records
local have = -1
if cur[1] == ARGV[1] and cur[2] then
  have = tonumber(cur[2])
else
  if cur[1] and tonumber(cur[3] or '0') > tonumber(ARGV[4]) then
    return -1
  end
  if ARGV[7] ~= '1' then
    return -2
  end
  if redis.call('SCARD', KEYS[4]) ~= old then
    return -3
  end
  for j = 1, old do
    if redis.call('SISMEMBER', KEYS[4], ARGV[names + j]) == 0 then
      return -3
    end
  end
  for j = 1, old do
    redis.call('DEL', KEYS[4 + records + j])
  end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
end
local written = 0
for i = names + old + 1, #ARGV, 2 do
  if tonumber(ARGV[i]) > have then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], ARGV[i] .. '-1', 'frame', ARGV[i + 1])
    redis.call('PUBLISH', KEYS[3], ARGV[i + 1])
    written = written + 1
  end
end
if tonumber(ARGV[3]) > have then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', ARGV[3], 'position', ARGV[4])
  for j = 1, records do
    local name, value = ARGV[6 + 2 * j], ARGV[7 + 2 * j]
    if value == '' then
      redis.call('DEL', KEYS[4 + j])
      redis.call('SREM', KEYS[4], name)
    else
      redis.call('SET', KEYS[4 + j], value)
      redis.call('SADD', KEYS[4], name)
    end
  end
end
return written
"""

# KEYS: snapshot, record names, then the key of each name given. ARGV: the record names stored.
# -> {} when nothing is stored; nil when the names given are not those stored any more (read
# them again); else {epoch, seq, then each record's value in the order given}: one consistent
# snapshot.
_READ = """
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not meta[1] then
  return {}
end
if redis.call('SCARD', KEYS[2]) ~= #ARGV then
  return false
end
local out = {meta[1], meta[2]}
for i, name in ipairs(ARGV) do
  if redis.call('SISMEMBER', KEYS[2], name) == 0 then
    return false
  end
  out[#out + 1] = redis.call('GET', KEYS[2 + i]) or 'null'
end
return out
"""


def inside_redis(exc: BaseException) -> bool:
    """Whether `exc` was raised inside redis-py. Its asyncio connection, shared by concurrent
    commands (the worker publishes several centers at once), can be torn down while another
    command is being sent on it, which then fails with AttributeError ('NoneType' object has no
    attribute 'writelines'); a retry reconnects. Seen once in CI, through a Redis Cluster: it
    crashed the worker's `project` agent. An AttributeError of our own is a bug: not retried."""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and str(last.tb_frame.f_globals.get("__name__", "")).startswith(
        "redis.")


class Keys:
    """Every Redis name the fan-out uses: one place to change them."""

    def __init__(self, prefix: str = "linkage") -> None:
        self.prefix = prefix

    def snapshot(self, center: str) -> str:
        return f"{self.prefix}:snapshot:{{{center}}}"

    def records(self, center: str) -> str:
        return f"{self.prefix}:records:{{{center}}}"

    def record(self, center: str, name: str) -> str:
        return f"{self.prefix}:record:{{{center}}}:{name}"

    def deltas(self, center: str) -> str:
        return f"{self.prefix}:deltas:{{{center}}}"

    def channel(self, center: str) -> str:
        return f"{self.prefix}:console:{{{center}}}"

    @property
    def channels(self) -> str:
        return f"{self.prefix}:console:*"

    def center_of(self, channel: str) -> str:
        return channel[len(self.prefix) + len(":console:"):].removeprefix("{").removesuffix("}")

    @property
    def owner(self) -> str:
        return f"{self.prefix}:views-owner"


class Claim(Protocol):
    """The worker group's claim on the views (`views_claim.ViewsClaim`)."""

    async def ensure(self) -> None:
        """Return once the views are known to be this group's to write."""


class RedisFanout:
    """The worker's side: store and publish each delta exactly once per (epoch, seq)."""

    def __init__(self, url: str, prefix: str = "linkage", maxlen: int = 1000,
                 retry_every: float = 0.5, claim: Claim | None = None) -> None:
        self.url = url
        self.keys = Keys(prefix)
        self.maxlen = maxlen
        self.retry_every = retry_every
        self.claim = claim  # the worker group's claim on these views: checked before writing
        self._redis = async_client(url)
        self._write = self._redis.register_script(_WRITE)
        # center -> the epoch Redis holds, as this fan-out last wrote it: until then, a
        # center's writes carry its whole view, which a new epoch needs to replace the old.
        self._live: dict[str, str] = {}
        self._staging: set[str] = set()  # centers whose epoch is held back (for the log)
        self.written = 0
        self.staged = 0  # batches held back while a new epoch catches up with the old

    async def publish(
        self, center: str, epoch: str, deltas: list[tuple[int, list[Change]]], view: View,
    ) -> None:
        """Store and publish consecutive deltas and the view after the last (the records they
        touched, or all of them); waits for Redis rather than dropping them."""
        if self.claim is not None:
            await self.claim.ensure()
        k = self.keys
        seq = deltas[-1][0]
        changed = touched(c for _, changes in deltas for c in changes)
        frames: list[Any] = []
        for delta_seq, changes in deltas:
            frames += [delta_seq, delta_frame(center, epoch, delta_seq, changes)]
        whole = self._live.get(center) != epoch
        while True:
            try:
                records = {name: record_value(view, name) for name in changed}
                old: list[str] = []
                if whole:
                    records |= view_records(view)
                    old = sorted(_text(m) for m in await self._redis.smembers(k.records(center)))
                args: list[Any] = [epoch, self.maxlen, seq, int(view.get("position") or 0),
                                   len(records), len(old), "1" if whole else "0"]
                for name, value in records.items():
                    args += [name, b"" if value is None else orjson.dumps(value)]
                keys = [k.snapshot(center), k.deltas(center), k.channel(center), k.records(center),
                        *(k.record(center, name) for name in records),
                        *(k.record(center, name) for name in old)]
                written = await self._write(keys=keys, args=[*args, *old, *frames])
            except (RedisError, OSError, AttributeError) as exc:
                if isinstance(exc, AttributeError) and not inside_redis(exc):
                    raise
                log.warning("Redis at %s failed (%s); retrying delta %s/%d", self.url, exc,
                            center, seq)
                await asyncio.sleep(self.retry_every)
                continue
            if written in (WHOLE, STALE):
                whole = True
                continue
            if written == STAGED:
                if center not in self._staging:
                    log.info("Redis: epoch %s of %s is behind the stored one; held back until "
                             "it reaches its position", epoch, center)
                self._staging.add(center)
                self.staged += 1
                self._live.pop(center, None)
                return
            if center in self._staging:
                self._staging.discard(center)
                log.info("Redis: epoch %s of %s caught up and replaced the stored one at seq %d",
                         epoch, center, seq)
            self.written += written
            self._live[center] = epoch
            return

    async def close(self) -> None:
        await self._redis.aclose()


class RedisViewSource:
    """The hub's side: snapshots and missed deltas from Redis (a `ViewSource`)."""

    def __init__(self, url: str, centers: Iterable[str], prefix: str = "linkage") -> None:
        self.keys = Keys(prefix)
        self.centers = frozenset(centers)
        self._redis = async_client(url)
        self._read = self._redis.register_script(_READ)
        self._transactions = not is_cluster(url)  # a cluster pipeline cannot be one
        # Consoles that connect together share one read of a center's snapshot.
        self._reading: dict[str, asyncio.Future[tuple[str, int, View]]] = {}

    def has_center(self, center: str) -> bool:
        return center in self.centers

    async def state(self, center: str) -> tuple[str, int]:
        epoch, seq = await self._redis.hmget(self.keys.snapshot(center), ["epoch", "seq"])
        return (_text(epoch), int(_text(seq or b"0"))) if epoch is not None else ("", 0)

    async def snapshot(self, center: str) -> tuple[str, int, View]:
        reading = self._reading.get(center)
        if reading is None:
            reading = asyncio.ensure_future(self._read_snapshot(center))
            self._reading[center] = reading
            reading.add_done_callback(lambda _: self._reading.pop(center, None))
        return await asyncio.shield(reading)

    async def _read_snapshot(self, center: str) -> tuple[str, int, View]:
        k = self.keys
        while True:
            names = sorted(_text(m) for m in await self._redis.smembers(k.records(center)))
            reply = await self._read(
                keys=[k.snapshot(center), k.records(center),
                      *(k.record(center, name) for name in names)], args=names)
            if reply is not None:  # else a write changed the record names meanwhile
                break
        if not reply:  # nothing projected for this center yet
            return "", 0, new_view(center)
        records = {name: orjson.loads(value) for name, value in zip(names, reply[2:], strict=True)}
        return reply[0].decode(), int(reply[1]), view_from_records(new_view(center), records)

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
            except (RedisError, OSError, AttributeError) as exc:
                if isinstance(exc, AttributeError) and not inside_redis(exc):
                    raise
                self.ready.clear()
                log.warning("Redis at %s failed (%s); resubscribing", self.url, exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
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


def _text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes unless told to decode)."""
    return value.decode() if isinstance(value, bytes) else value
