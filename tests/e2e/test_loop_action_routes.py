"""Over real HTTP: every action of the domain's table has its route, and nothing else does."""

from __future__ import annotations

import httpx
import pytest

from domain.actions import PATHS
from tests.conftest import RunningServer

pytestmark = pytest.mark.e2e

GRID = "130706001001001"


def test_every_table_action_reaches_its_handler_and_an_unknown_one_is_404(
    server: RunningServer,
) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        made = client.post("/api/incidents", json={"source": "hotline", "category": "noise",
                                                   "grid": GRID, "description": "routes"})
        assert made.status_code == 201, made.text
        incident = made.json()["id"]
        for path in PATHS:
            # An empty body: the action's own answer (done, illegal now, or a field missing),
            # never "no such action".
            response = client.post(f"/api/incidents/{incident}/{path}", json={})
            assert response.status_code in (200, 409, 422), (path, response.text)
            assert "unknown action" not in response.text
        unknown = client.post(f"/api/incidents/{incident}/archive", json={})
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("application/problem+json")
        assert unknown.json()["detail"] == (
            f"unknown action 'archive'; expected one of {', '.join(PATHS)}")
        documented = client.get("/openapi.json").json()["paths"]
        prefix = "/api/incidents/{incident_id}/"
        assert [p.removeprefix(prefix) for p in documented if p.startswith(prefix)] == list(PATHS)
