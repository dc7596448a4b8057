"""Auditor replay: the view rebuilt for time T equals the view a live console showed at T."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from projections.patch import View, apply_changes
from tests.conftest import RunningServer

pytestmark = pytest.mark.e2e


def test_the_view_at_a_past_time_equals_what_a_console_showed_then(server: RunningServer) -> None:
    embedded: Any = server.embedded
    grids = embedded.jurisdiction.grids()
    center = embedded.jurisdiction.centers_for(grids[0].id)[0]
    auditor = {"Authorization": f"Bearer {embedded.tokens.issue('aud', 'auditor', None)}"}
    http = httpx.Client(base_url=server.url, headers=server.headers, timeout=10)
    recorded: list[tuple[str, View]] = []

    def live_position() -> int:
        return int(http.get(f"/api/centers/{center}/view").json()["position"])

    with connect(server.console_url(center), open_timeout=5) as ws:
        snapshot = json.loads(ws.recv(timeout=5))
        view: View = snapshot["view"]
        recorded.append((datetime.now(UTC).isoformat(), copy.deepcopy(view)))

        def command(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            before = live_position()
            response = http.request(method, path, json=body)
            assert response.status_code in (200, 201), response.text
            deadline = time.monotonic() + 5
            while live_position() == before:  # the runner folded the new event
                assert time.monotonic() < deadline, "the projection did not catch up"
                time.sleep(0.01)
            target = http.get(f"/api/centers/{center}/view").json()
            while view != target:  # the console received every delta up to it
                frame = json.loads(ws.recv(timeout=5))
                assert frame["type"] == "delta", frame
                apply_changes(view, frame["changes"])
            recorded.append((datetime.now(UTC).isoformat(), copy.deepcopy(view)))
            result: dict[str, Any] = response.json()
            return result

        ids = []
        for i, grid in enumerate(grids[:3]):
            made = command("POST", "/api/incidents", {
                "source": "hotline", "category": "garbage", "grid": grid.id,
                "description": f"garbage piling up {i}"})
            ids.append(made["id"])
        steps = [("accept", {}), ("dispatch", {"assignee": {"kind": "department", "id": "urban_management"},
                                               "due": "2030-01-01T00:00:00Z",
                                               "due_reason": "long-term works"}),
                 ("acknowledge", {}), ("resolve", {"outcome": "cleared"}),
                 ("return-visit", {"satisfaction": 4}), ("close", {})]
        for action, body in steps:
            command("POST", f"/api/incidents/{ids[0]}/{action}", body)
        command("POST", f"/api/incidents/{ids[1]}/reject", {"reason": "not a city matter"})

    assert len(recorded) == 11
    assert recorded[0][1]["position"] == 0 and recorded[-1][1]["counts"]["closed"] == 1
    for at, seen in recorded:
        rebuilt = http.get(f"/api/audit/centers/{center}/view", params={"at": at},
                           headers=auditor)
        assert rebuilt.status_code == 200, rebuilt.text
        assert rebuilt.json() == seen, f"view at {at} differs from what the console showed"

    history = http.get(f"/api/audit/incidents/{ids[0]}/history", headers=auditor).json()
    assert [e["type"] for e in history["events"]] == [
        "Reported", "Accepted", "Dispatched", "Acknowledged", "Resolved", "ReturnVisited", "Closed"]
    assert all(e["actor"]["user"] == "test-officer" and e["at"] for e in history["events"])
    times = http.get(f"/api/audit/centers/{center}/events", headers=auditor).json()
    assert len(times) == 10 and times == sorted(times, key=lambda e: e["n"])
    http.close()


@pytest.mark.parametrize("at", ["yesterday", "2026-05-01T08:00:00", "", "2026-13-45T99:00:00Z"])
def test_a_bad_time_is_answered_422(server: RunningServer, at: str) -> None:
    center = server.embedded.jurisdiction.root.id  # type: ignore[attr-defined]
    response = httpx.get(f"{server.url}/api/audit/centers/{center}/view", params={"at": at},
                         headers=server.headers)
    # A city officer may not use the audit API: the auditor's token is needed
    assert response.status_code == 403
    auditor = server.embedded.tokens.issue("aud", "auditor", None)  # type: ignore[attr-defined]
    response = httpx.get(f"{server.url}/api/audit/centers/{center}/view", params={"at": at},
                         headers={"Authorization": f"Bearer {auditor}"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "time" in response.json()["detail"]


def test_the_replay_page_offers_a_time_slider(server: RunningServer) -> None:
    page = httpx.get(f"{server.url}/replay")
    assert page.status_code == 200
    assert 'id="scrubber" type="range"' in page.text
    script = httpx.get(f"{server.url}/static/replay.js")
    assert script.status_code == 200 and "/api/audit/centers/" in script.text
