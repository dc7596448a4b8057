"""Frigate events over real MQTT through Mosquitto: one alert per Frigate event; bad payloads dead-lettered."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import httpx
import orjson
import pytest

from domain.camera_alert import alert_id
from tests.conftest import RunningServer, start_server
from tests.e2e.alerting import CAMERA, CENTERS, START, Console


@pytest.fixture(params=["inline", "writer"], ids=["inline", "writer-process"])
def mqtt_server(request: pytest.FixtureRequest, tmp_path: Path,
                mqtt_address: tuple[str, int]) -> Iterator[tuple[RunningServer, str]]:
    host, port = mqtt_address
    topic = f"test/{uuid.uuid4().hex}/frigate/events"
    running = start_server(tmp_path / "data", mqtt=True, mqtt_url=f"mqtt://{host}:{port}",
                           mqtt_topic=topic, ingest_process=request.param == "writer")
    try:
        deadline = time.monotonic() + 15
        while stats(running)["counts"].get("mqtt.subscribed", 0) < 1:
            assert time.monotonic() < deadline, "the MQTT subscriber never subscribed"
            time.sleep(0.05)
        yield running, topic
    finally:
        running.stop()


def stats(server: RunningServer) -> dict:  # type: ignore[type-arg]
    return httpx.get(f"{server.url}/api/ingest/stats", headers=server.headers).json()


def frigate(kind: str, event_id: str, score: float, end: float | None = None) -> bytes:
    after = {"id": event_id, "camera": CAMERA, "label": "person", "score": score,
             "top_score": score, "current_zones": ["gate"], "start_time": START,
             "end_time": end, "false_positive": False, "frame_time": end or START + 1}
    return orjson.dumps({"type": kind, "before": after, "after": after})


async def test_frigate_new_update_end_over_mqtt_makes_one_alert(
    mqtt_server: tuple[RunningServer, str], mqtt_address: tuple[str, int],
) -> None:
    server, topic = mqtt_server
    console = await Console.open(server, CENTERS[0])
    event_id = f"{START}-{uuid.uuid4().hex[:6]}"
    async with aiomqtt.Client(*mqtt_address) as client:
        for payload in (frigate("new", event_id, 0.71), frigate("update", event_id, 0.83),
                        frigate("update", event_id, 0.83),  # QoS 1 redelivery: changes nothing
                        frigate("end", event_id, 0.83, end=START + 40),
                        frigate("new", event_id, 0.71)):  # a late redelivery of "new"
            await client.publish(topic, payload, qos=1)
    ref = str(alert_id("frigate", event_id))
    view = await console.wait_for(lambda v: ref in v["alerts"] and v["alerts"][ref]["ended"])
    assert view["alert_counts"]["raised"] == 1
    data = httpx.get(f"{server.url}/api/alerts/{ref}", headers=server.headers).json()
    assert [e["type"] for e in data["timeline"]] == ["Raised", "Updated", "Ended"]
    assert (data["top_score"], data["end_time"]) == (0.83, START + 40)
    await console.close()


async def test_bad_mqtt_payloads_are_dead_lettered_and_counted(
    mqtt_server: tuple[RunningServer, str], mqtt_address: tuple[str, int],
) -> None:
    server, topic = mqtt_server
    async with aiomqtt.Client(*mqtt_address) as client:
        await client.publish(topic, b"{not json", qos=1)
        await client.publish(topic, orjson.dumps({"type": "new", "after": {"id": "x"}}), qos=1)
        bad_camera = orjson.loads(frigate("new", "ghost-1", 0.9))
        bad_camera["after"]["camera"] = "cam-ghost"
        await client.publish(topic, orjson.dumps(bad_camera), qos=1)
        await client.publish(topic, frigate("new", "good-1", 0.9), qos=1)
    deadline = time.monotonic() + 15
    while stats(server)["dead_letter"] < 3 or stats(server)["counts"].get("alerts.created", 0) < 1:
        assert time.monotonic() < deadline, stats(server)
        await asyncio.sleep(0.05)
    reasons = [d["reason"] for d in stats(server)["recent_dead_letters"]]
    assert any("malformed JSON" in r for r in reasons)
    assert any("cam-ghost" in r for r in reasons)
    assert stats(server)["dead_letter"] == 3


async def test_frigate_messages_past_the_ingest_limits_are_dead_lettered_not_stored(
    mqtt_server: tuple[RunningServer, str], mqtt_address: tuple[str, int],
) -> None:
    """Issue #11 row 10: one message with 200,000 zones was stored and grew every console
    snapshot. The limits of the other paths hold here too; what breaks them is a dead letter."""
    server, topic = mqtt_server

    def with_after(event_id: str, **fields: object) -> bytes:
        message = orjson.loads(frigate("new", event_id, 0.9))
        message["after"].update(fields)
        return orjson.dumps(message)

    refused = {
        "zones": with_after("zones", current_zones=[f"z{i}" for i in range(200_000)]),
        "entered": with_after("entered", entered_zones=["z" * 129]),
        "plate": with_after("plate", recognized_license_plate="P" * 10_000),
        "label": with_after("label", sub_label="s" * 10_000),
        "late": with_after("late", start_time=253_402_300_799.0),  # 9999-12-31T23:59:59Z
        "nested": b'{"type":"new","after":' + b"[" * 1000 + b"]" * 1000 + b"}",
        # valid but for a field that is skipped (`before`): nested too deep all the same
        "nested-skipped": b'{"type":"new","before":' + b"[" * 100 + b"]" * 100 + b',"after":'
        + orjson.dumps(orjson.loads(frigate("new", "nested-skipped", 0.9))["after"]) + b"}",
    }
    async with aiomqtt.Client(*mqtt_address) as client:
        for payload in refused.values():
            await client.publish(topic, payload, qos=1)
        await client.publish(topic, frigate("new", "within-limits", 0.9), qos=1)
    deadline = time.monotonic() + 30
    while stats(server)["dead_letter"] < len(refused) \
            or stats(server)["counts"].get("alerts.created", 0) < 1:
        assert time.monotonic() < deadline, stats(server)
        await asyncio.sleep(0.05)
    assert stats(server)["dead_letter"] == len(refused)
    assert stats(server)["counts"]["alerts.created"] == 1
    reasons = [d["reason"] for d in stats(server)["recent_dead_letters"]]
    for words in ("length <= 64 - at `$.after.current_zones`",
                  "$.after.entered_zones[0]", "$.after.recognized_license_plate",
                  "$.after.sub_label", "$.after.start_time", "nested 1001 levels deep",
                  "nested 101 levels deep"):
        assert any(words in reason for reason in reasons), (words, reasons)
    for event_id in refused:
        ref = alert_id("frigate", event_id)
        missing = httpx.get(f"{server.url}/api/alerts/{ref}", headers=server.headers)
        assert missing.status_code == 404, missing.text
