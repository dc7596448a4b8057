"""A client written from docs/PROTOCOL.md alone follows a center through a burst of reports, a
dropped connection and a resume, and ends equal to GET /api/centers/{id}/view."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.protocol_client import ConsoleClient

pytestmark = pytest.mark.e2e

CENTER = "130700"  # the city
GRIDS = ("130706001001001", "130706200001001")  # two townships of one district
BURST = 60


async def report_burst(server: RunningServer, n: int) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:
        for i in range(n):
            response = await client.post("/api/incidents", json={
                "source": "hotline", "category": "noise", "grid": GRIDS[i % 2],
                "description": f"noise report {i}"})
            assert response.status_code == 201


async def test_a_client_from_the_document_survives_a_drop_and_ends_equal_to_the_http_view(
    server: RunningServer,
) -> None:
    assert server.token is not None
    client = ConsoleClient(server.url, CENTER, server.token)
    await client.connect()
    assert (await client.receive())["type"] == "snapshot"
    burst = asyncio.create_task(report_burst(server, BURST))
    while client.deltas < 10:  # mid-burst
        await client.receive()
    await client.drop()
    dropped_at = client.seq
    while True:  # the burst goes on while the client is away
        _, seq, _ = await client.http_view()
        if seq >= (dropped_at or 0) + 10 or burst.done():
            break
        await asyncio.sleep(0.05)
    await client.connect()  # resume from (epoch, seq)
    first = await client.receive()
    assert first["type"] == "delta" and first["seq"] == (dropped_at or 0) + 1, \
        "the missed deltas, from the first one missed, not a snapshot"
    await burst
    epoch, seq, view = await client.http_view()
    while (client.epoch, client.seq) != (epoch, seq):
        await client.receive()
    assert client.view == view
    assert client.snapshots == 1
    assert view["counts"]["reported"] == BURST
    await client.close()
