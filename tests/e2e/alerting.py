"""Helpers for the alert e2e tests: alert bodies and a console that mirrors its view."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from projections.patch import View, apply_changes

CAMERA = "cam-130706001001001-1"
GRID = "130706001001001"
CENTERS = ("130706001", "130706", "130700")  # township, district, city
START = 1_800_000_000.0


def alert(event_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": event_id, "camera": CAMERA, "label": "person", "score": 0.7,
                            "start_time": START}
    body.update(fields)
    return body


def post_alerts(server: Any, alerts: list[dict[str, Any]] | dict[str, Any], **kw: Any) -> httpx.Response:
    body = {"alerts": alerts} if isinstance(alerts, list) else alerts
    return httpx.post(f"{server.url}/api/ingest/alerts", json=body,
                      headers=server.feed_headers, timeout=30, **kw)


def stored_events(server: Any) -> int:
    return int(server.embedded.service.recorder.max_notification_id() or 0)


class Console:
    """A real console websocket: applies the snapshot and every delta, counts frames."""

    def __init__(self, ws: ClientConnection, center: str) -> None:
        self.ws = ws
        self.center = center
        self.view: View = {}
        self.deltas = 0
        self.seq = -1
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, server: Any, center: str) -> Console:
        ws = await connect(server.console_url(center), max_size=None)
        console = cls(ws, center)
        await ws.send('{"type": "hello"}')
        first = orjson.loads(await ws.recv())
        assert first["type"] == "snapshot", first
        console.view, console.seq = first["view"], first["seq"]
        console._task = asyncio.create_task(console._pump())
        return console

    async def _pump(self) -> None:
        async for text in self.ws:
            frame = orjson.loads(text)
            if frame["type"] == "snapshot":
                self.view, self.seq = frame["view"], frame["seq"]
            elif frame["type"] == "delta":
                assert frame["seq"] == self.seq + 1, (frame["seq"], self.seq)
                self.seq = frame["seq"]
                self.deltas += 1
                apply_changes(self.view, frame["changes"])

    async def wait_for(self, predicate: Callable[[View], bool], timeout: float = 20) -> View:
        deadline = time.monotonic() + timeout
        while not predicate(self.view):
            if self._task is not None and self._task.done():
                self._task.result()
            if time.monotonic() > deadline:
                raise AssertionError(f"console {self.center} never saw it; view: "
                                     f"{orjson.dumps(self.view)[:2000]!r}")
            await asyncio.sleep(0.02)
        return self.view

    async def close(self) -> None:
        await self.ws.close()
        if self._task is not None:
            self._task.cancel()
