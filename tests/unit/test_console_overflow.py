"""A console that keeps falling behind gets snapshots, then is closed with 4008."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from command_center.app import create_app
from command_center.console import CLOSE_TOO_SLOW
from command_center.hub import Hub
from command_center.protocol import Frame, delta_frame
from command_center.types import Services
from projections.center_view import new_view


class OneCenter:
    """The jurisdiction of a one-center tree."""

    def centers_for(self, unit: str) -> tuple[str, ...]:
        return (unit,)


class FixedViews:
    """A view source at (epoch 'e', seq 0) for one center."""

    def has_center(self, center: str) -> bool:
        return center == "c"

    def snapshot(self, center: str) -> tuple[str, int, dict[str, Any]]:
        return "e", 0, new_view(center)

    def history(self, center: str, epoch: str, seq: int) -> None:
        return None


def _app(hub: Hub, max_overflows: int) -> Any:
    officer = {"user": "u", "role": "city_officer", "center": "c"}
    services = Services(jurisdiction=OneCenter(), incidents=None,  # type: ignore[arg-type]
                        hub=hub,
                        views=FixedViews(), resume_wait=0.01, max_overflows=max_overflows,
                        authenticate=lambda conn: officer,  # type: ignore[arg-type,return-value]
                        authorize=lambda actor, permission, centers: None,
                        check_origin=lambda conn: None)
    return create_app(services)


def _burst(hub: Hub, first: int) -> None:
    for seq in range(first, first + 5):  # more than the queue holds, before the console reads
        hub.publish_frame("c", Frame("e", seq, delta_frame("c", "e", seq, [])))


def test_console_that_overflows_gets_a_fresh_snapshot() -> None:
    hub = Hub(queue_size=2)
    with TestClient(_app(hub, max_overflows=3)) as client, \
            client.websocket_connect("/ws/console?center=c") as ws:
        assert orjson.loads(ws.receive_text())["type"] == "snapshot"
        client.portal.call(_burst, hub, 1)
        assert orjson.loads(ws.receive_text())["type"] == "snapshot"


def test_console_that_overflows_too_often_is_closed_with_4008() -> None:
    hub = Hub(queue_size=2)
    with TestClient(_app(hub, max_overflows=2)) as client, \
            client.websocket_connect("/ws/console?center=c") as ws:
        assert orjson.loads(ws.receive_text())["type"] == "snapshot"
        for burst in range(2):
            client.portal.call(_burst, hub, 1 + burst * 5)
            assert orjson.loads(ws.receive_text())["type"] == "snapshot"
        client.portal.call(_burst, hub, 11)
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_text()
        assert closed.value.code == CLOSE_TOO_SLOW
