"""`GET /api/incidents` over real HTTP: pages list every incident once, filters narrow the list,
the view's authorization applies, and every bad parameter is a 4xx naming it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer

CITY, TOWN_A, TOWN_B = "130700", "130706001", "130706200"
GRID_A, GRID_B = "130706001001001", "130706200001001"
PAST_DUE = "2020-01-01T08:00:00+08:00"


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        yield client


def report(client: httpx.Client, grid: str, severity: str = "routine") -> str:
    response = client.post("/api/incidents", json={
        "source": "hotline", "category": "noise", "grid": grid, "severity": severity,
        "description": "路灯损坏 / broken street light"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def listed(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every page of the list, following `next`."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/incidents", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next"]
        if cursor is None:
            return items


def wait_listed(client: httpx.Client, count: int, **params: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        items = listed(client, **params)
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.05)


@pytest.fixture
def cases(client: httpx.Client) -> dict[str, list[str]]:
    """17 incidents in township A (two major, one overdue, one closed), 6 in township B."""
    a = [report(client, GRID_A, "major" if i < 2 else "routine") for i in range(17)]
    b = [report(client, GRID_B) for _ in range(6)]
    assert client.post(f"/api/incidents/{a[5]}/accept", json={}).status_code == 200
    assert client.post(f"/api/incidents/{a[5]}/dispatch", json={
        "assignee": {"kind": "department", "id": "water_affairs"}, "due": PAST_DUE}).status_code == 200
    assert client.post(f"/api/incidents/{a[6]}/reject", json={"reason": "no"}).status_code == 200
    wait_listed(client, 23, center=CITY)
    deadline = time.monotonic() + 20
    while listed(client, center=CITY, status="rejected") == [] and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"a": a, "b": b}


def test_pages_return_every_incident_exactly_once_in_urgency_order(
        client: httpx.Client, cases: dict[str, list[str]]) -> None:
    items = listed(client, center=CITY, limit=4)
    ids = [i["id"] for i in items]
    assert sorted(ids) == sorted(cases["a"] + cases["b"])
    assert len(ids) == len(set(ids))
    assert [i["severity"] for i in items[:2]] == ["major", "major"]
    assert items == sorted(items, key=lambda i: (i["urgency"], i["id"]))
    first = client.get("/api/incidents", params={"center": CITY, "limit": 500}).json()
    assert first["next"] is None and len(first["items"]) == 23


def test_filters_narrow_the_list(client: httpx.Client, cases: dict[str, list[str]]) -> None:
    a, b = cases["a"], cases["b"]

    def ids(**params: Any) -> set[str]:
        return {i["id"] for i in listed(client, **params)}

    assert ids(center=TOWN_B) == set(b)
    assert ids(center=CITY, grid=GRID_A) == set(a)
    assert ids(center=CITY, severity="major") == set(a[:2])
    assert ids(center=CITY, status="rejected") == {a[6]}
    assert ids(center=CITY, status="open") == set(a + b) - {a[6]}
    assert ids(center=CITY, status="dispatched,rejected") == {a[5], a[6]}
    assert ids(center=CITY, assignee="department:water_affairs") == {a[5]}
    assert ids(center=CITY, overdue="true") == {a[5]}
    assert ids(center=TOWN_A, overdue="false") == set(a) - {a[5]}
    [row] = listed(client, center=CITY, assignee="department:water_affairs")
    assert row["due"] == PAST_DUE and row["centers"] == [TOWN_A, "130706", CITY]
    assert {"grid", "status", "severity", "category", "assignee", "reported_at", "updated_at",
            "summary", "version"} <= row.keys()


def test_a_township_officer_lists_only_their_own_township(
        server: RunningServer, client: httpx.Client, cases: dict[str, list[str]]) -> None:
    token = server.embedded.tokens.issue("officer-a", "township_officer", TOWN_A)  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {token}"}
    own = client.get("/api/incidents", params={"center": TOWN_A, "limit": 500}, headers=headers)
    assert own.status_code == 200
    assert {i["id"] for i in own.json()["items"]} == set(cases["a"])
    for center in (CITY, TOWN_B, "130706"):
        response = client.get("/api/incidents", params={"center": center}, headers=headers)
        assert response.status_code == 403, center
        view = client.get(f"/api/centers/{center}/view", headers=headers)
        assert view.status_code == 403  # the same answer as for the view
    anonymous = httpx.get(f"{server.url}/api/incidents", params={"center": TOWN_A}, timeout=10)
    assert anonymous.status_code == 401


@pytest.mark.parametrize(("params", "status", "parameter"), [
    ({}, 422, "center"),
    ({"center": "nowhere"}, 422, "center"),
    ({"center": GRID_A}, 422, "center"),
    ({"center": CITY, "status": "lost"}, 422, "status"),
    ({"center": CITY, "grid": TOWN_A}, 422, "grid"),
    ({"center": CITY, "severity": "urgent"}, 422, "severity"),
    ({"center": CITY, "assignee": "water"}, 422, "assignee"),
    ({"center": CITY, "assignee": "robot:r2"}, 422, "assignee"),
    ({"center": CITY, "overdue": "yes"}, 422, "overdue"),
    ({"center": CITY, "limit": "0"}, 422, "limit"),
    ({"center": CITY, "limit": "501"}, 422, "limit"),
    ({"center": CITY, "limit": "ten"}, 422, "limit"),
    ({"center": CITY, "cursor": "not-a-cursor"}, 400, "cursor"),
    ({"center": CITY, "cursor": "WzEsMl0="}, 400, "cursor"),  # [1,2]: not ours
    ({"center": CITY, "sort": "id"}, 400, "sort"),
    ({"center": [CITY, TOWN_A]}, 400, "center"),
])
def test_a_bad_parameter_is_a_problem_naming_it(client: httpx.Client, params: dict[str, Any],
                                                status: int, parameter: str) -> None:
    response = client.get("/api/incidents", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["parameter"] == parameter
    assert parameter in problem["detail"] and "expected" in problem["detail"]
