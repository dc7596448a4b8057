"""The HTTP contract over real HTTP: the five-step loop, and every bad input a clear 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer

GRID = "130706001001001"
OTHER_TOWNSHIP_GRID = "130706200001001"
REPORT = {"source": "hotline", "category": "noise", "grid": GRID,
          "description": "夜间施工噪音扰民 / construction noise at night",
          "location": {"lon": 115.28, "lat": 40.49},
          "reporter": {"name": "王女士", "phone": "13800000000"}}
DUE = "2026-12-01T08:00:00+08:00"


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        yield client


def report(client: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/incidents", json={**REPORT, **overrides})
    assert response.status_code == 201, response.text
    return response.json()


def act(client: httpx.Client, incident_id: str, action: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/incidents/{incident_id}/{action}", json=body)


def assert_problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    for word in words:
        assert word in problem["detail"], problem["detail"]
    return problem


def test_the_whole_five_step_loop_over_http(client: httpx.Client) -> None:
    incident = report(client)
    assert incident["status"] == "reported"
    assert incident["centers"] == ["130706001", "130706", "130700"]
    i = incident["id"]
    steps = [
        ("accept", {"note": "受理"}, "accepted"),
        ("dispatch", {"assignee": {"kind": "department", "id": "urban_management"}, "due": DUE},
         "dispatched"),
        ("return", {"reason": "not our department"}, "returned"),
        ("dispatch", {"assignee": {"kind": "department", "id": "housing"}, "due": DUE},
         "dispatched"),
        ("transfer", {"assignee": {"kind": "grid_worker", "id": "gw-130706001001001"}}, "dispatched"),
        ("acknowledge", {}, "acknowledged"),
        ("progress", {"note": "on site"}, "acknowledged"),
        ("resolve", {"outcome": "work hours enforced"}, "resolved"),
        # Dissatisfied: reopened at once, to the same assignee (issue #14)
        ("return-visit", {"satisfaction": 1, "comment": "still noisy"}, "dispatched"),
        ("acknowledge", {}, "acknowledged"),
        ("resolve", {"outcome": "equipment removed"}, "resolved"),
        ("return-visit", {"satisfaction": 5}, "visited"),
        ("close", {}, "closed"),
    ]
    for action, body, status in steps:
        response = act(client, i, action, **body)
        assert response.status_code == 200, (action, response.text)
        assert response.json()["status"] == status
    detail = client.get(f"/api/incidents/{i}").json()
    assert [e["type"] for e in detail["timeline"]] == [
        "Reported", "Accepted", "Dispatched", "Returned", "Dispatched", "Transferred",
        "Acknowledged", "ProgressReported", "Resolved", "ReturnVisited", "ReopenedAutomatically",
        "Acknowledged", "Resolved", "ReturnVisited", "Closed"]
    assert all(e["actor"]["user"] and e["at"] for e in detail["timeline"])
    assert detail["version"] == 15


def test_reject_and_mark_duplicate_end_an_incident(client: httpx.Client) -> None:
    first = report(client)
    second = report(client)
    third = report(client)
    assert act(client, second["id"], "mark-duplicate", of=first["id"]).json()["status"] == "duplicate"
    assert act(client, third["id"], "reject", reason="not a governance matter").json()["status"] == "rejected"


def test_the_center_tree_reaches_the_grids(client: httpx.Client) -> None:
    tree = client.get("/api/centers").json()
    assert tree["id"] == "130700" and tree["level"] == "city"
    assert len(tree["children"]) == 16
    xhy = next(c for c in tree["children"] if c["id"] == "130706")
    assert {"id", "name", "name_en", "level", "children"} <= set(xhy)
    township = xhy["children"][0]
    grid = township["children"][0]["children"][0]
    assert grid["level"] == "grid"


def test_views_show_an_incident_in_township_district_and_city_only(
    client: httpx.Client, server: RunningServer
) -> None:
    incident = report(client)
    server.embedded.runner.catch_up()  # type: ignore[attr-defined]
    for center in ("130706001", "130706", "130700"):
        view = client.get(f"/api/centers/{center}/view").json()
        assert incident["id"] in view["queue"], center
    other = client.get("/api/centers/130706200/view").json()
    assert incident["id"] not in other["queue"]


def test_openapi_lists_the_contract(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/incidents" in spec["paths"]
    assert "/api/incidents/{incident_id}/return-visit" in spec["paths"]
    assert "ReportIncident" in spec["components"]["schemas"]


def test_healthz(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"


# -- bad input: each a clear 4xx, none a 500, nothing appended ---------------

def events_in_store(server: RunningServer) -> int:
    return server.embedded.service.recorder.max_notification_id() or 0  # type: ignore[attr-defined]


def test_malformed_json_is_400(client: httpx.Client, server: RunningServer) -> None:
    before = events_in_store(server)
    response = client.post("/api/incidents", content=b'{"source": "hotline",',
                           headers={"content-type": "application/json"})
    assert_problem(response, 400, "malformed JSON")
    assert events_in_store(server) == before


def test_a_wrong_type_is_422_naming_the_field(client: httpx.Client) -> None:
    incident = report(client)
    act(client, incident["id"], "accept")
    response = client.post("/api/incidents", json={**REPORT, "description": 42})
    assert_problem(response, 422, "description")
    response = act(client, incident["id"], "dispatch",
                   assignee={"kind": "department", "id": "x"}, due="tomorrow")
    assert_problem(response, 422, "due")


def test_a_missing_field_is_422_naming_it(client: httpx.Client) -> None:
    body = dict(REPORT)
    del body["grid"]
    assert_problem(client.post("/api/incidents", json=body), 422, "grid")
    incident = report(client)
    assert_problem(act(client, incident["id"], "reject"), 422, "reason")


def test_an_unknown_field_or_bad_enum_is_422(client: httpx.Client) -> None:
    assert_problem(client.post("/api/incidents", json={**REPORT, "colour": "red"}), 422, "colour")
    assert_problem(client.post("/api/incidents", json={**REPORT, "severity": "huge"}), 422,
                   "severity")
    incident = report(client)
    for action in ("accept", "dispatch", "acknowledge", "resolve"):
        body: dict[str, Any] = {
            "dispatch": {"assignee": {"kind": "department", "id": "housing"}, "due": DUE},
            "resolve": {"outcome": "ok"}}.get(action, {})
        assert act(client, incident["id"], action, **body).status_code == 200
    assert_problem(act(client, incident["id"], "return-visit", satisfaction=9), 422,
                   "satisfaction")


def test_an_unknown_grid_is_422(client: httpx.Client, server: RunningServer) -> None:
    before = events_in_store(server)
    assert_problem(client.post("/api/incidents", json={**REPORT, "grid": "999999"}), 422,
                   "999999", "grid")
    # a township is not a grid
    assert_problem(client.post("/api/incidents", json={**REPORT, "grid": "130706001"}), 422)
    assert events_in_store(server) == before


def test_an_unknown_incident_is_404(client: httpx.Client) -> None:
    missing = "8d3e6f5a-0000-4000-8000-000000000000"
    assert_problem(client.get(f"/api/incidents/{missing}"), 404, missing)
    assert_problem(act(client, missing, "accept"), 404, missing)
    assert_problem(client.get("/api/incidents/not-a-uuid"), 404)
    assert_problem(client.get("/api/centers/130706001001/view"), 404, "center")
    incident = report(client)
    assert_problem(act(client, incident["id"], "mark-duplicate", of=missing), 404, missing)


def test_an_unknown_action_or_route_is_404(client: httpx.Client) -> None:
    incident = report(client)
    assert_problem(act(client, incident["id"], "teleport"), 404, "teleport")
    assert_problem(client.get("/api/nothing-here"), 404)


def test_an_oversized_body_is_413(client: httpx.Client, server: RunningServer) -> None:
    before = events_in_store(server)
    big = {**REPORT, "description": "x" * (2 << 20)}
    assert_problem(client.post("/api/incidents", json=big), 413, "bytes")
    assert events_in_store(server) == before


def test_a_chunked_oversized_body_is_413_too(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"description": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    response = client.post("/api/incidents", content=chunks(),
                           headers={"content-type": "application/json"})
    assert_problem(response, 413)


def test_a_wrong_content_type_is_415(client: httpx.Client) -> None:
    response = client.post("/api/incidents", content=b"source=hotline",
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert_problem(response, 415, "application/json")


def test_an_illegal_transition_is_409_naming_status_and_allowed_actions(
    client: httpx.Client,
) -> None:
    incident = report(client)
    problem = assert_problem(act(client, incident["id"], "close"), 409, "'reported'", "accept")
    assert problem["current_status"] == "reported"
    assert problem["allowed_actions"] == ["accept", "reject", "mark-duplicate"]
    assert client.get(f"/api/incidents/{incident['id']}").json()["version"] == 1


def test_a_concurrent_modification_is_409(client: httpx.Client) -> None:
    incident = report(client)
    assert act(client, incident["id"], "accept", expected_version=1).status_code == 200
    assert_problem(act(client, incident["id"], "reject", reason="late", expected_version=1), 409,
                   "version")
    assert client.get(f"/api/incidents/{incident['id']}").json()["status"] == "accepted"


def test_a_wrong_method_is_405(client: httpx.Client) -> None:
    assert_problem(client.delete("/api/incidents"), 405)


def test_a_higher_center_supervises_and_an_officer_escalates(
    client: httpx.Client, server: RunningServer
) -> None:
    incident = report(client)
    i = incident["id"]
    assert_problem(act(client, i, "escalate", reason="slow"), 409, "'reported'")
    act(client, i, "accept")
    supervised = act(client, i, "supervise", note="请于今日办结", by_center="130706")
    assert supervised.status_code == 200, supervised.text
    assert supervised.json()["supervised_by"] == "130706"
    assert_problem(act(client, i, "supervise", note="x", by_center="130709"), 422, "130709")
    assert_problem(act(client, i, "supervise", by_center="130706"), 422, "note")
    escalated = act(client, i, "escalate", reason="no progress")
    assert escalated.json()["escalated_to"] == "township"
    server.embedded.runner.catch_up()  # type: ignore[attr-defined]
    item = client.get("/api/centers/130706/view").json()["queue"][i]
    assert item["supervised_by"] == "130706"
    assert item["escalated_to"] == "township"


def test_a_major_hazard_report_is_escalated_at_once(client: httpx.Client) -> None:
    incident = report(client, severity="major", category="fire_hazard")
    assert incident["escalated_to"] == "township"
    timeline = client.get(f"/api/incidents/{incident['id']}").json()["timeline"]
    assert [e["type"] for e in timeline] == ["Reported", "Escalated"]
