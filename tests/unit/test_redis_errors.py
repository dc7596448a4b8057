"""Which AttributeErrors the Redis fan-out retries (infra/distributed/redis_fanout.py): those
raised inside redis-py, as its asyncio connection raises when it is torn down while a command
is sent on it, and not our own."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.connection import Connection

from infra.distributed.redis_fanout import inside_redis


def test_a_torn_down_connection_fails_inside_redis() -> None:
    async def send_on_a_torn_down_connection() -> None:
        # Where CI saw it: a command sent while a concurrent one's disconnect had just set the
        # connection's writer to None (redis-py's `_send_packed_command`, under a connect).
        connection = Connection()
        connection._writer = None
        await connection._send_packed_command([b"PING\r\n"])

    with pytest.raises(AttributeError) as caught:
        asyncio.run(send_on_a_torn_down_connection())
    assert "writelines" in str(caught.value)
    assert inside_redis(caught.value)


def test_an_attribute_error_of_our_own_is_not_retried() -> None:
    with pytest.raises(AttributeError) as caught:
        None.writelines  # type: ignore[attr-defined]  # noqa: B018
    assert not inside_redis(caught.value)
