"""GET /api/ingest/stats (issue #11 row 4): duty officers and admins only; each officer sees the
dead letters of their own jurisdiction; plates masked for everyone but admins. The dead letters
are real: bad Frigate events published to Mosquitto."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest

from infra.loaders.cameras import DEFAULT_CAMERAS
from tests.conftest import RunningServer, start_server

pytestmark = pytest.mark.e2e

TOWN_A, TOWN_B = "130706001", "130706002"
PLATE_A, PLATE_B, PLATE_GHOST = "冀G12345", "京A12345", "冀GB2046"


def camera_in(township: str) -> str:
    cameras = json.loads(DEFAULT_CAMERAS.read_text())["cameras"]
    return str(next(c["id"] for c in cameras if c["grid"].startswith(township)))


def broken_event(camera: str, plate: str) -> bytes:
    """A Frigate event that cannot be stored (a score that is not a number): a dead letter."""
    after = {"id": f"dl-{uuid.uuid4().hex[:6]}", "camera": camera, "label": "car",
             "score": "high", "start_time": 1_800_000_000.0, "recognized_license_plate": plate,
             "sub_label": [plate, 0.93]}
    return orjson.dumps({"type": "new", "before": after, "after": after})


@pytest.fixture
def mqtt_server(tmp_path: Path, mqtt_address: tuple[str, int]) -> Iterator[tuple[RunningServer, str]]:
    host, port = mqtt_address
    topic = f"test/{uuid.uuid4().hex}/frigate/events"
    running = start_server(tmp_path / "data", mqtt=True, mqtt_url=f"mqtt://{host}:{port}",
                           mqtt_topic=topic)
    try:
        yield running, topic
    finally:
        running.stop()


def bearer(server: RunningServer, user: str, role: str, center: str | None, **kw: Any) -> dict[str, str]:
    token = server.embedded.tokens.issue(user, role, center, **kw)  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


def stats(server: RunningServer, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{server.url}/api/ingest/stats", headers=headers)


async def test_ingest_stats_are_for_officers_and_show_only_their_dead_letters_masked(
    mqtt_server: tuple[RunningServer, str], mqtt_address: tuple[str, int],
) -> None:
    server, topic = mqtt_server
    admin = bearer(server, "root", "admin", None)
    deadline = time.monotonic() + 15
    while stats(server, admin).json()["counts"].get("mqtt.subscribed", 0) < 1:
        assert time.monotonic() < deadline, "the MQTT subscriber never subscribed"
        time.sleep(0.05)
    async with aiomqtt.Client(*mqtt_address) as client:
        await client.publish(topic, broken_event(camera_in(TOWN_A), PLATE_A), qos=1)
        await client.publish(topic, broken_event(camera_in(TOWN_B), PLATE_B), qos=1)
        await client.publish(topic, broken_event("cam-ghost", PLATE_GHOST), qos=1)
    deadline = time.monotonic() + 15
    while stats(server, admin).json()["dead_letter"] < 3:
        assert time.monotonic() < deadline, stats(server, admin).text
        time.sleep(0.05)

    grid_a = server.embedded.jurisdiction.grids_under(TOWN_A)[0].id  # type: ignore[attr-defined]
    refused = {
        "grid worker": bearer(server, "gw", "grid_worker", grid_a),
        "department": bearer(server, "h", "department", "130706", department="water"),
        "auditor": bearer(server, "aud", "auditor", None),
        "feed key": server.feed_headers,
    }
    for who, headers in refused.items():
        response = stats(server, headers)
        assert response.status_code == 403, (who, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert "duty officers and admins" in response.json()["detail"], who
        assert PLATE_A not in response.text and "cam-" not in response.text, who

    def letters(headers: dict[str, str]) -> list[dict[str, Any]]:
        response = stats(server, headers)
        assert response.status_code == 200, response.text
        assert response.json()["dead_letter"] == 3  # the counters are the whole intake's
        return list(response.json()["recent_dead_letters"])

    town_a = letters(bearer(server, "ta", "township_officer", TOWN_A))
    assert [d["camera"] for d in town_a] == [camera_in(TOWN_A)]
    assert PLATE_A not in town_a[0]["payload"] and "[masked]" in town_a[0]["payload"]
    town_b = letters(bearer(server, "tb", "township_officer", TOWN_B))
    assert [d["camera"] for d in town_b] == [camera_in(TOWN_B)]
    # A district officer sees both townships of the district; a letter naming no known camera
    # belongs to the city's intake.
    district = letters(bearer(server, "d", "district_officer", "130706"))
    assert [d["camera"] for d in district] == [camera_in(TOWN_A), camera_in(TOWN_B)]
    city = letters(server.headers)
    assert [d["camera"] for d in city] == [camera_in(TOWN_A), camera_in(TOWN_B), "cam-ghost"]
    for plate in (PLATE_A, PLATE_B, PLATE_GHOST):
        assert all(plate not in d["payload"] for d in city)
    unmasked = letters(admin)
    for letter, plate in zip(unmasked, (PLATE_A, PLATE_B, PLATE_GHOST), strict=True):
        assert plate in letter["payload"]
