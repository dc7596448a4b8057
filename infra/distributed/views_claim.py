"""One worker group writes the views under a Redis prefix: its claim, renewed, with a TTL.

Two faust worker groups (different `LINKAGE_WORKER_ID`s) on one prefix would each keep views
under epochs of their own and overwrite each other's snapshots, so consoles resync again and
again. A group claims `<prefix>:views-owner` (its group id, with a TTL it renews every third
of it, from a thread of its own) before it starts; a process of another group refuses to start while that claim is live,
and a group that finds its claim taken exits rather than write: the supervisor shows why.
Processes of one group share the claim. Before each write the worker makes sure its claim was
renewed within the last two thirds of the TTL (a stalled worker renews, or learns it lost).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisError

from infra.distributed.redis_client import AsyncRedis, async_client, is_cluster, node_url
from infra.distributed.redis_fanout import Keys

log = logging.getLogger(__name__)

# KEYS: the owner hash. ARGV: group, ttl ms, who (host and pid). Returns {1} when the claim is
# this group's now; else {0, group, who, pttl} of the live claim of another group.
_CLAIM = """
local group = redis.call('HGET', KEYS[1], 'group')
if group == false or group == ARGV[1] then
  redis.call('HSET', KEYS[1], 'group', ARGV[1], 'by', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1}
end
return {0, group, redis.call('HGET', KEYS[1], 'by') or '', redis.call('PTTL', KEYS[1])}
"""


class ViewsClaimed(RuntimeError):
    """Another worker group holds a live claim on the views under this prefix."""


@dataclass(frozen=True)
class Holder:
    group: str
    by: str
    ttl_ms: int


def _refusal(prefix: str, group: str, other: Holder) -> str:
    return (f"the views under Redis prefix {prefix!r} are claimed by worker group "
            f"{other.group!r} (renewed by {other.by}; it lapses in {other.ttl_ms / 1000:.0f} s "
            f"unless renewed again); this worker's group {group!r} (LINKAGE_WORKER_ID) will not write "
            "under it. Stop that group first, or give this one a LINKAGE_REDIS_PREFIX of its own")


def _holder(reply: list[object]) -> Holder | None:
    if int(str(reply[0])) == 1:
        return None
    group, by, ttl = (r.decode() if isinstance(r, bytes) else str(r) for r in reply[1:4])
    return Holder(group, by, int(ttl))


class ViewsClaim:
    def __init__(self, url: str, prefix: str, group: str, *, ttl: float = 30.0,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.key = Keys(prefix).owner
        self.group = group
        self.ttl = ttl
        self.by = f"pid {os.getpid()} on {socket.gethostname()}"
        self.on_lost = on_lost or (lambda reason: None)
        self.valid_until = 0.0  # monotonic time until which no other group can hold it
        self._redis: AsyncRedis | None = None  # the worker's event loop (before writes)
        self._sync: redis.Redis | RedisCluster | None = None  # start-up and the renewing thread
        self._stop = threading.Event()

    @property
    def renew_every(self) -> float:
        return self.ttl / 3

    def _args(self) -> list[str | int]:
        return [self.group, int(self.ttl * 1000), self.by]

    def take(self) -> None:
        """Claim the views at start; ViewsClaimed naming the holder when another group has them."""
        other = self._claim()
        if other is not None:
            raise ViewsClaimed(_refusal(self.prefix, self.group, other))
        log.info("worker group %s claims the views under Redis prefix %s (TTL %g s)",
                 self.group, self.prefix, self.ttl)

    def keep_renewing(self) -> threading.Thread:
        """Renew every `renew_every` seconds in a thread of its own, from now on (joining the
        consumer group may take longer than the TTL); `on_lost` when another group took it."""

        def run() -> None:
            while not self._stop.wait(self.renew_every):
                try:
                    other = self._claim()
                except (RedisError, OSError) as exc:
                    log.warning("could not renew the views claim at %s (%s); trying again in %g s",
                                self.url, exc, self.renew_every)
                    continue
                if other is not None:
                    self._lost(other)
                    return

        thread = threading.Thread(target=run, name="views-claim", daemon=True)
        thread.start()
        return thread

    def _claim(self) -> Holder | None:
        started = time.monotonic()
        if self._sync is None:
            kind = RedisCluster if is_cluster(self.url) else redis.Redis
            self._sync = kind.from_url(node_url(self.url), socket_connect_timeout=5,
                                       socket_timeout=5)
        other = _holder(self._sync.eval(_CLAIM, 1, self.key, *self._args()))
        if other is None:
            self._renewed(started)
        return other

    async def renew(self) -> None:
        """Renew the claim; when another group holds it now, `on_lost` (which exits the
        worker), else ViewsClaimed."""
        started = time.monotonic()
        if self._redis is None:
            self._redis = async_client(self.url, max_connections=2)
        other = _holder(await self._redis.eval(_CLAIM, 1, self.key, *self._args()))
        if other is not None:
            raise ViewsClaimed(self._lost(other))
        self._renewed(started)

    def _renewed(self, started: float) -> None:
        # Counted from before the request: the server's TTL runs from a later moment.
        self.valid_until = started + self.ttl * 2 / 3

    def _lost(self, other: Holder) -> str:
        self.valid_until = 0.0
        reason = _refusal(self.prefix, self.group, other)
        self.on_lost(reason)
        return reason

    async def ensure(self, retry_every: float = 0.5) -> None:
        """Return once the claim is known to be this group's (renewing it if it may have lapsed)."""
        while time.monotonic() >= self.valid_until:
            try:
                await self.renew()
            except (RedisError, OSError) as exc:
                log.warning("could not renew the views claim at %s (%s); waiting", self.url, exc)
                await asyncio.sleep(retry_every)

    async def close(self) -> None:
        self._stop.set()
        if self._redis is not None:
            await self._redis.aclose()
        if self._sync is not None:
            self._sync.close()

