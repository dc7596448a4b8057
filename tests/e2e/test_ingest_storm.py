"""A burst of 10,000 alerts: every one stored, each console gets a storm summary, not 10,000 frames."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.alerting import CAMERA, CENTERS, START, Console, alert, post_alerts, stored_events

pytestmark = pytest.mark.ingest_modes  # every test: inline, and through the writer process

BURST = 10_000


async def test_burst_of_10000_alerts_becomes_a_storm_summary(server: RunningServer) -> None:
    consoles = [await Console.open(server, center) for center in CENTERS]
    before = stored_events(server)
    for batch in range(BURST // 1000):
        alerts = [alert(f"storm-{batch}-{i}", start_time=START + (batch * 1000 + i) * 0.0005)
                  for i in range(1000)]
        response = await asyncio.to_thread(post_alerts, server, alerts)
        assert response.status_code == 200, response.text
        assert response.json()["created"] == 1000
    assert stored_events(server) - before == BURST  # one Raised event per alert, none lost
    key = f"camera:{CAMERA}:10"
    for console in consoles:
        view = await console.wait_for(lambda v: v["alert_counts"]["raised"] == BURST, timeout=60)
        storm = view["storms"][key]
        assert storm["active"] and storm["count"] == BURST
        assert storm["labels"] == {"person": BURST}
        assert view["alert_counts"]["unacknowledged"] == BURST
        assert view["alert_counts"]["in_storm"] == BURST - 9  # the first 9 were listed one by one
        assert len(view["alerts"]) == 9
        assert console.deltas < 200, f"{console.center} got {console.deltas} frames"
        # The coalesced deltas, applied to the snapshot, give exactly the server's view.
        rest = await asyncio.to_thread(
            httpx.get, f"{server.url}/api/centers/{console.center}/view", headers=server.headers)
        assert console.view == rest.json()
        await console.close()


async def test_officer_acknowledges_a_whole_storm_at_once(server: RunningServer) -> None:
    console = await Console.open(server, CENTERS[2])
    calm = alert("calm", camera=CAMERA.replace("001-1", "002-1"), start_time=START)
    alerts = [alert(f"gust-{i}", start_time=START + i * 0.01) for i in range(300)]
    assert (await asyncio.to_thread(post_alerts, server, [calm, *alerts])).status_code == 200
    key = f"camera:{CAMERA}:10"
    await console.wait_for(lambda v: v["alert_counts"]["raised"] == 301 and key in v["storms"])
    before = stored_events(server)
    response = await asyncio.to_thread(
        httpx.post, f"{server.url}/api/storms/acknowledge",
        json={"center": CENTERS[2], "key": key}, headers=server.headers)
    assert response.status_code == 200, response.text
    assert response.json()["acknowledged"] == 300  # the calm camera's alert is not in the storm
    assert stored_events(server) - before == 300
    view = await console.wait_for(lambda v: v["alert_counts"]["unacknowledged"] == 1)
    assert view["alert_counts"]["acknowledged"] == 300
    again = await asyncio.to_thread(
        httpx.post, f"{server.url}/api/storms/acknowledge",
        json={"center": CENTERS[2], "key": key}, headers=server.headers)
    assert again.json()["acknowledged"] == 0
    missing = await asyncio.to_thread(
        httpx.post, f"{server.url}/api/storms/acknowledge",
        json={"center": CENTERS[2], "key": "camera:nope:10"}, headers=server.headers)
    assert missing.status_code == 404
    await console.close()
