"""The camera demo drives real alerts through the ingest API."""

from __future__ import annotations

import random

from infra.demo.cameras import CameraDemo
from infra.loaders.cameras import load_cameras
from tests.conftest import RunningServer


async def test_camera_demo_pushes_alerts_and_a_storm(server: RunningServer) -> None:
    cameras = load_cameras(server.embedded.settings.cameras,  # type: ignore[attr-defined]
                           server.embedded.jurisdiction).cameras()  # type: ignore[attr-defined]
    demo = CameraDemo(server.url, cameras, rate=0, rng=random.Random(3),
                      headers=server.feed_headers)
    await demo.run(steps=40)
    import httpx

    async with httpx.AsyncClient(base_url=server.url, headers=demo.headers) as client:
        await demo.storm(client)
    stats = httpx.get(f"{server.url}/api/ingest/stats", headers=server.headers).json()
    assert stats["counts"]["http.accepted"] == demo.sent >= 65
    assert stats["counts"].get("alerts.created", 0) >= 40
