"""The feed websocket /ws/feed over a real websocket: one ack per message, errors keep the line open."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.conftest import RunningServer, start_server
from tests.e2e.alerting import CAMERA, alert, stored_events

pytestmark = pytest.mark.ingest_modes  # every test: inline, and through the writer process


async def test_feed_websocket_acks_each_message_in_order(server: RunningServer) -> None:
    async with connect(f"{server.ws_url}/ws/feed",
                       additional_headers=server.feed_headers) as ws:
        await ws.send(orjson.dumps({"ref": 1, "alert": alert("w1")}))
        await ws.send(orjson.dumps({"ref": 2, "alerts": [alert("w2"), alert("w3")]}))
        first, second = orjson.loads(await ws.recv()), orjson.loads(await ws.recv())
        assert (first["type"], first["ref"], first["created"]) == ("ack", 1, 1)
        assert (second["type"], second["ref"], second["created"]) == ("ack", 2, 2)
        before = stored_events(server)
        # A gateway that reconnects and resends: acked again, nothing new stored.
        await ws.send(orjson.dumps({"ref": 3, "alerts": [alert("w2"), alert("w3")]}))
        third = orjson.loads(await ws.recv())
        assert (third["ref"], third["duplicate"]) == (3, 2)
        assert stored_events(server) == before


async def test_feed_websocket_bad_messages_get_errors_and_the_line_stays_open(
    tmp_path: Path,
) -> None:
    # A 1,001-alert message is ~100 KB: above the default websocket frame limit (64 KiB), so this
    # server allows larger frames to reach the batch-size check.
    server = start_server(tmp_path / "data", ws_max_size=1 << 20)
    try:
        await _bad_messages(server)
    finally:
        server.stop()


async def _bad_messages(server: RunningServer) -> None:
    async with connect(f"{server.ws_url}/ws/feed", max_size=None,
                       additional_headers=server.feed_headers) as ws:
        await ws.send("{not json")
        assert orjson.loads(await ws.recv())["status"] == 400
        await ws.send(orjson.dumps({"ref": "s", "alert": alert("x", score="high")}))
        invalid = orjson.loads(await ws.recv())
        assert (invalid["type"], invalid["ref"], invalid["status"]) == ("error", "s", 422)
        await ws.send(orjson.dumps({"ref": "c", "alert": alert("y", camera="cam-unknown")}))
        unknown = orjson.loads(await ws.recv())
        assert unknown["status"] == 422 and "cam-unknown" in unknown["detail"]
        await ws.send(orjson.dumps({"ref": "big", "alerts": [alert(f"b{i}") for i in range(1001)]}))
        assert orjson.loads(await ws.recv())["status"] == 413
        await ws.send(orjson.dumps({"ref": "ok", "alert": alert("z", camera=CAMERA)}))
        ok = orjson.loads(await ws.recv())
        assert (ok["type"], ok["ref"], ok["created"]) == ("ack", "ok", 1)


async def test_an_unknown_camera_on_the_feed_websocket_is_422_counted_as_rejected(
        server: RunningServer) -> None:
    async with connect(f"{server.ws_url}/ws/feed",
                       additional_headers=server.feed_headers) as ws:
        await ws.send(orjson.dumps({"ref": 1, "alerts": [alert("u1"),
                                                         alert("u2", camera="cam-nowhere")]}))
        refused = orjson.loads(await ws.recv())
    assert (refused["type"], refused["status"]) == ("error", 422)
    assert refused["detail"].startswith("alert #1: camera 'cam-nowhere' is not in the camera registry")
    counts = httpx.get(f"{server.url}/api/ingest/stats", headers=server.headers).json()["counts"]
    assert (counts["ws.rejected"], counts["ws.422"]) == (1, 1)
    assert "alerts.created" not in counts
