"""Embedded mode at city scale: 20,000 open incidents under one city."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.sync.client import connect

from infra.bootstrap import notification_reader
from infra.runner.embedded import EmbeddedRunner
from infra.store.view_store import MemoryViewStore
from tests.conftest import start_server
from tests.scale import report_many

pytestmark = pytest.mark.slow
OPEN = 20_000
KIB = 1024


def test_a_city_with_20000_open_incidents_keeps_a_small_snapshot_and_lists_them_all(
        tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        embedded = server.embedded
        jurisdiction = embedded.jurisdiction  # type: ignore[attr-defined]
        service = embedded.service  # type: ignore[attr-defined]
        runner = embedded.runner  # type: ignore[attr-defined]
        city = jurisdiction.root.id
        ids = report_many(service, [g.id for g in jurisdiction.grids()],
                          jurisdiction.centers_for, OPEN)
        runner.wake()
        last = service.recorder.max_notification_id()
        deadline = time.monotonic() + 120
        while runner.position < last and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runner.position == last

        with connect(server.console_url(city), max_size=None) as ws:
            ws.send('{"type":"hello"}')
            frame = ws.recv(timeout=30)
        snapshot = orjson.loads(frame)
        assert snapshot["type"] == "snapshot"
        assert len(frame.encode() if isinstance(frame, str) else frame) < 256 * KIB
        view = snapshot["view"]
        assert sum(view["counts"].values()) == OPEN
        assert len(view["queue"]) == runner.queue_size

        replay = EmbeddedRunner(notification_reader(service), MemoryViewStore(),
                                runner.centers, queue_size=runner.queue_size)
        replay.catch_up()
        for center in runner.centers:
            assert replay.view(center) == runner.view(center), center
        assert replay.view(city) == view

        listed: list[str] = []
        cursor = None
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
            while True:
                params = {"center": city, "limit": 500, **({"cursor": cursor} if cursor else {})}
                page = client.get("/api/incidents", params=params).json()
                listed += [item["id"] for item in page["items"]]
                cursor = page["next"]
                if cursor is None:
                    break
        assert len(listed) == OPEN and set(listed) == set(ids)
        # the list starts where the console's queue does
        assert listed[:runner.queue_size] == sorted(
            view["queue"], key=lambda i: (view["queue"][i]["urgency"], i))
    finally:
        server.stop()
