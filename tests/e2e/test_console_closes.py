"""Bad client messages over a real socket: a clear error frame or a close code, and a count."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningServer

pytestmark = pytest.mark.e2e

CENTER = "130700"


def closed(server: RunningServer) -> dict[str, float]:
    """linkage_console_closed_total by reason, from GET /metrics (no credentials)."""
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    return {sample.labels["reason"]: sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples if sample.name == "linkage_console_closed_total"}


async def recv(ws: Any) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), 10))


async def close_code(ws: Any) -> int | None:
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return info.value.rcvd.code if info.value.rcvd is not None else None


async def test_every_close_reason_is_exported_from_the_start(server: RunningServer) -> None:
    assert closed(server) == dict.fromkeys(
        ("too_slow", "send_timeout", "ping_timeout", "rate_limit", "token_expired", "too_big",
         "binary_frame"), 0.0)


async def test_a_malformed_message_gets_an_error_frame_and_the_console_stays(
    server: RunningServer,
) -> None:
    async with websockets.connect(server.console_url(CENTER)) as ws:
        await ws.send('{"type":"hello"}')
        assert (await recv(ws))["type"] == "snapshot"
        for bad, expected in (("{not json", "not JSON"), ("[1, 2]", "got a JSON array"),
                              ('{"type":"subscribe"}', "unknown message type 'subscribe'")):
            await ws.send(bad)
            error = await recv(ws)
            assert error["type"] == "error"
            assert expected in error["detail"]
            assert "expected" in error["detail"]
            assert "hello, resume, ping or snapshot" in error["detail"]
        await ws.send('{"type":"ping"}')
        assert (await recv(ws))["type"] == "pong"


async def test_a_binary_frame_closes_with_1003_and_is_counted(server: RunningServer) -> None:
    async with websockets.connect(server.console_url(CENTER)) as ws:
        await ws.send('{"type":"hello"}')
        assert (await recv(ws))["type"] == "snapshot"
        await ws.send(b'{"type":"ping"}')
        assert await close_code(ws) == 1003
    assert closed(server)["binary_frame"] == 1


async def test_a_message_over_the_size_limit_closes_with_1009_and_is_counted(
    server: RunningServer,
) -> None:
    async with websockets.connect(server.console_url(CENTER)) as ws:
        await ws.send('{"type":"hello"}')
        assert (await recv(ws))["type"] == "snapshot"
        await ws.send('{"type":"ping","pad":"' + "x" * 70_000 + '"}')
        assert await close_code(ws) == 1009
    assert closed(server)["too_big"] == 1


async def test_too_many_messages_close_with_1008_and_are_counted(server: RunningServer) -> None:
    async with websockets.connect(server.console_url(CENTER)) as ws:
        await ws.send('{"type":"hello"}')
        assert (await recv(ws))["type"] == "snapshot"
        for _ in range(100):  # the test server allows 10/s with bursts of 20
            await ws.send('{"type":"ping"}')
        assert await close_code(ws) == 1008
    assert closed(server)["rate_limit"] == 1
