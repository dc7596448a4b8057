"""POST /api/storms/acknowledge with the other windows of a burst (`also`): one transaction, and
every window marked acknowledged in the view (`acked`), even the ones another window covered."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.e2e.alerting import CAMERA, CENTERS, START, alert, post_alerts


def view(server: RunningServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/centers/{CENTERS[0]}/view", headers=server.headers)
    assert response.status_code == 200
    return dict(response.json())


def wait_view(server: RunningServer, ok: Any, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = view(server)
        if ok(current):
            return current
        assert time.monotonic() < deadline, "the view did not get there in time"
        time.sleep(0.1)


def ack(server: RunningServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/api/storms/acknowledge", json={"center": CENTERS[0], **body},
                      headers=server.headers)


def burst(server: RunningServer) -> list[str]:
    response = post_alerts(server, [alert(f"s{i}", start_time=START + i * 0.01) for i in range(40)])
    assert response.status_code == 200, response.text
    current = wait_view(server, lambda v: v["alert_counts"]["raised"] == 40)
    keys = sorted(current["storms"])
    assert f"camera:{CAMERA}:10" in keys and f"camera:{CAMERA}:60" in keys
    return keys


def test_a_burst_acknowledged_in_one_request_marks_every_window(server: RunningServer) -> None:
    keys = burst(server)
    response = ack(server, {"key": keys[0], "also": keys[1:]})
    assert response.status_code == 200, response.text
    assert response.json()["acknowledged"] == 40  # each alert once, whatever windows it counts in
    current = wait_view(server, lambda v: v["alert_counts"]["unacknowledged"] == 0)
    for key in keys:
        storm = current["storms"][key]
        assert storm["acked"] == storm["count"], key


def test_one_window_alone_marks_only_that_window(server: RunningServer) -> None:
    keys = burst(server)
    small = f"camera:{CAMERA}:10"
    assert ack(server, {"key": small}).status_code == 200
    current = wait_view(server, lambda v: "acked" in v["storms"][small])
    assert [k for k in keys if "acked" in current["storms"][k]] == [small]
    # a later window covered by the first gets nothing to acknowledge, and no mark
    assert ack(server, {"key": f"camera:{CAMERA}:60"}).json()["acknowledged"] == 0


def test_bad_windows_are_refused_and_acknowledge_nothing(server: RunningServer) -> None:
    keys = burst(server)
    missing = ack(server, {"key": keys[0], "also": ["camera:nope:10"]})
    assert missing.status_code == 404
    assert "camera:nope:10" in missing.json()["detail"]
    too_many = ack(server, {"key": keys[0], "also": [keys[1]] * 17})
    assert too_many.status_code == 422
    not_a_list = ack(server, {"key": keys[0], "also": keys[1]})
    assert not_a_list.status_code == 422
    assert view(server)["alert_counts"]["unacknowledged"] == 40
