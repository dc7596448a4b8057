"""Supervision orders and the assessment over real HTTP: who may issue, answer and read;
the assessment as JSON and as CSV (the same numbers); every bad parameter a clear 4xx."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.test_http_api import GRID, act, assert_problem, report

TOWNSHIP, DISTRICT, CITY = "130706001", "130706", "130700"
OTHER_TOWNSHIP = "130706200"


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        yield client


def as_(server: RunningServer, role: str, center: str | None, **kw: Any) -> dict[str, str]:
    embedded: Any = server.embedded
    return {"Authorization": "Bearer " + embedded.tokens.issue("u-" + role, role, center, **kw)}


def later(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def issue(client: httpx.Client, headers: dict[str, str] | None = None,
          **overrides: Any) -> httpx.Response:
    body = {"issuer": DISTRICT, "addressee": TOWNSHIP, "deadline": later(4),
            "note": "clear the blocked drain on Jianguo Road", **overrides}
    return client.post("/api/orders", json=body, headers=headers or {})


def test_an_order_is_issued_shown_to_both_sides_and_fulfilled_by_the_addressee(
    client: httpx.Client, server: RunningServer,
) -> None:
    district = as_(server, "district_officer", DISTRICT)
    township = as_(server, "township_officer", TOWNSHIP)
    made = issue(client, district)
    assert made.status_code == 201, made.text
    order = made.json()
    assert order["status"] == "issued" and order["centers"] == [TOWNSHIP, DISTRICT, CITY]
    for unit, headers, role in ((TOWNSHIP, township, "addressee"), (DISTRICT, district, "issuer")):
        listed = client.get("/api/orders", params={"unit": unit}, headers=headers).json()
        assert [(o["id"], o["role"]) for o in listed["items"]] == [(order["id"], role)]
    # Only the addressee answers: not the issuer, not a sibling township.
    assert_problem(client.post(f"/api/orders/{order['id']}/acknowledge", json={},
                               headers=district), 403, "only that center's officers")
    sibling = as_(server, "township_officer", OTHER_TOWNSHIP)
    assert client.get("/api/orders", params={"unit": TOWNSHIP}, headers=sibling).status_code == 403
    ack = client.post(f"/api/orders/{order['id']}/acknowledge", json={}, headers=township)
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    done = client.post(f"/api/orders/{order['id']}/fulfil", json={"what": "drain cleared"},
                       headers=township)
    assert done.status_code == 200 and done.json()["on_time"] is True
    assert_problem(client.post(f"/api/orders/{order['id']}/fulfil", json={"what": "again"},
                               headers=township), 409, "fulfilled already")
    assert client.get("/api/orders", params={"unit": TOWNSHIP},
                      headers=township).json()["items"] == []


def test_a_department_sees_and_answers_its_own_orders(client: httpx.Client,
                                                      server: RunningServer) -> None:
    order = issue(client, addressee="department:water").json()
    water = as_(server, "department", None, department="water")
    roads = as_(server, "department", None, department="roads")
    listed = client.get("/api/orders", params={"unit": "department:water"}, headers=water)
    assert [o["id"] for o in listed.json()["items"]] == [order["id"]]
    assert client.get("/api/orders", params={"unit": "department:water"},
                      headers=roads).status_code == 403
    assert_problem(client.post(f"/api/orders/{order['id']}/fulfil", json={"what": "x"},
                               headers=roads), 403, "only its handlers")
    assert client.post(f"/api/orders/{order['id']}/fulfil", json={"what": "pipe fixed"},
                       headers=water).status_code == 200


@pytest.mark.parametrize(("overrides", "status", "words"), [
    ({"issuer": TOWNSHIP, "addressee": DISTRICT}, 422, ["not below"]),
    ({"addressee": TOWNSHIP, "issuer": "nowhere"}, 422, ["issuer"]),
    ({"addressee": "nowhere"}, 422, ["not a center"]),
    ({"deadline": "2020-01-01T00:00:00+00:00"}, 422, ["not in the future"]),
    ({"deadline": "tomorrow"}, 422, ["deadline"]),
    ({"note": ""}, 422, ["note"]),
    ({"note": "x" * 5000}, 422, ["note"]),
    ({"colour": "red"}, 422, ["colour"]),
    ({"incident": "00000000-0000-0000-0000-000000000000"}, 404, ["not found"]),
])
def test_a_bad_order_is_refused(client: httpx.Client, overrides: dict[str, Any], status: int,
                                words: list[str]) -> None:
    assert_problem(issue(client, **overrides), status, *words)


def test_an_order_in_another_centers_name_is_forbidden(client: httpx.Client,
                                                       server: RunningServer) -> None:
    township = as_(server, "township_officer", TOWNSHIP)
    assert issue(client, township).status_code == 403


def test_bad_order_queries_and_actions(client: httpx.Client) -> None:
    assert_problem(client.get("/api/orders"), 400, "unit is required")
    assert_problem(client.get("/api/orders", params={"unit": "x", "colour": "1"}), 400, "colour")
    assert_problem(client.get("/api/orders", params={"unit": GRID}), 422, "not a center")
    assert_problem(client.get("/api/orders/not-a-uuid"), 404, "UUID")
    order = issue(client).json()
    assert_problem(client.post(f"/api/orders/{order['id']}/cancel", json={}), 404, "acknowledge")
    assert_problem(client.post(f"/api/orders/{order['id']}/fulfil", json={}), 422, "what")


def workload(client: httpx.Client, server: RunningServer) -> None:
    """Two cases through the loop, one dissatisfied, and an order met."""
    for rating in (5, 2):
        i = report(client)["id"]
        for action, body in [("accept", {}),
                             ("dispatch", {"assignee": {"kind": "department", "id": "water_affairs"}}),
                             ("acknowledge", {}), ("resolve", {"outcome": "fixed"}),
                             ("return-visit", {"satisfaction": rating})]:
            assert act(client, i, action, **body).status_code == 200
    order = issue(client).json()
    assert client.post(f"/api/orders/{order['id']}/fulfil", json={"what": "done"},
                       headers=as_(server, "township_officer", TOWNSHIP)).status_code == 200


def test_the_assessment_as_csv_equals_the_json(client: httpx.Client,
                                               server: RunningServer) -> None:
    workload(client, server)
    params = {"period": "day"}
    as_json = client.get("/api/assessment", params=params)
    assert as_json.status_code == 200, as_json.text
    data = as_json.json()
    as_csv = client.get("/api/assessment", params=params, headers={"Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert client.get("/api/assessment", params={**params, "format": "csv"}).text == as_csv.text
    table = list(csv.reader(io.StringIO(as_csv.text)))
    assert table[0] == data["columns"]
    assert len(table) - 1 == len(data["rows"]) > 0
    for line, row in zip(table[1:], data["rows"], strict=True):
        assert line == ["" if row[c] is None else str(row[c]) for c in data["columns"]]
    today = [r for r in data["rows"] if r["unit"] == TOWNSHIP and r["intake"]]
    assert len(today) == 1 and today[0]["intake"] == 2 and today[0]["reopens"] == 1
    assert today[0]["satisfaction"] == 3.5 and today[0]["orders_met_on_time"] == 1.0
    water = [r for r in data["rows"] if r["unit"] == "department:water_affairs" and r["resolved"]]
    assert water and water[0]["resolved"] == 2


def test_officers_see_their_center_and_below_auditors_everything(
    client: httpx.Client, server: RunningServer,
) -> None:
    workload(client, server)
    township = client.get("/api/assessment", headers=as_(server, "township_officer", TOWNSHIP))
    assert {r["unit"] for r in township.json()["rows"]} == {TOWNSHIP}
    district = client.get("/api/assessment", headers=as_(server, "district_officer", DISTRICT))
    units = {r["unit"] for r in district.json()["rows"]}
    assert DISTRICT in units and TOWNSHIP in units and "department:water_affairs" not in units
    assert all(u == DISTRICT or u.startswith(DISTRICT) for u in units)
    auditor = client.get("/api/assessment", headers=as_(server, "auditor", None))
    assert "department:water_affairs" in {r["unit"] for r in auditor.json()["rows"]}
    assert_problem(client.get("/api/assessment", params={"unit": DISTRICT},
                              headers=as_(server, "township_officer", TOWNSHIP)), 403)
    water = client.get("/api/assessment", headers=as_(server, "department", None,
                                                      department="water_affairs"))
    assert {r["unit"] for r in water.json()["rows"]} == {"department:water_affairs"}


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"period": "year"}, 422, ["period", "day, week, month"]),
    ({"from": "yesterday"}, 422, ["YYYY-MM-DD"]),
    ({"from": "2026-12-01", "to": "2026-11-01"}, 422, ["after"]),
    ({"period": "day", "from": "2020-01-01", "to": "2026-01-01"}, 422, ["more than 366"]),
    ({"format": "xml"}, 422, ["json or csv"]),
    ({"unit": GRID}, 422, ["not a center"]),
    ({"colour": "red"}, 400, ["colour"]),
])
def test_bad_assessment_parameters_are_refused(client: httpx.Client, params: dict[str, str],
                                               status: int, words: list[str]) -> None:
    assert_problem(client.get("/api/assessment", params=params), status, *words)


def test_one_unit_by_month(client: httpx.Client, server: RunningServer) -> None:
    workload(client, server)
    # The assessment's days are local (+08:00), like the sample jurisdiction's.
    first = datetime.now(timezone(timedelta(hours=8))).date().replace(day=1).isoformat()
    data = client.get("/api/assessment", params={"unit": TOWNSHIP, "period": "month",
                                                 "from": first}).json()
    assert [r["start"] for r in data["rows"]] == [first] and data["rows"][0]["kind"] == "township"
