"""Redis clients for one server or a Redis Cluster, chosen by the URL's scheme.

`redis://host:port/db` is one server. `redis+cluster://host:port` is a Redis Cluster reached
through any of its nodes (redis-py's cluster client discovers the rest). Every key the fan-out
writes together carries its center as a hash tag (redis_fanout.Keys), so its Lua script stays
in one slot. Pub/sub is the classic kind, which a cluster forwards to every node: a subscriber
listens on the node of the URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

CLUSTER_SCHEME = "redis+cluster"

AsyncRedis = aioredis.Redis | RedisCluster


def is_cluster(url: str) -> bool:
    return urlsplit(url).scheme == CLUSTER_SCHEME


def node_url(url: str) -> str:
    """The plain `redis://` URL of the node a cluster URL names (a plain URL unchanged)."""
    parts = urlsplit(url)
    if parts.scheme != CLUSTER_SCHEME:
        return url
    return urlunsplit(("redis", *parts[1:]))


def async_client(url: str, max_connections: int = 32) -> AsyncRedis:
    """A client whose callers wait for one of a bounded set of connections, never fail for it."""
    if is_cluster(url):
        return RedisCluster.from_url(node_url(url), max_connections=max_connections,
                                     socket_connect_timeout=5, socket_keepalive=True)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=30, socket_connect_timeout=5,
        socket_keepalive=True, health_check_interval=10)
    return aioredis.Redis(connection_pool=pool)


def node_client(url: str) -> aioredis.Redis:
    """A plain client of the URL's node: for pub/sub, which a cluster shares between nodes."""
    return async_client(node_url(url))  # type: ignore[return-value]  # a plain URL
