"""The grid registry over HTTP on a real server: residents in and out change the population at
every level (and a console sees it live), ID numbers are check-digit validated, a second
registration elsewhere is a 409 with a move hint, dispatch goes only to registered targets that
serve the case's grid, a released worker's token gets 401, and personal data is masked in every
response for roles without the permission."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import websockets

from domain.registry import id_check_digit
from tests.conftest import RunningServer, start_server

pytestmark = pytest.mark.e2e

CITY, DISTRICT, TOWNSHIP, OTHER_TOWNSHIP = "130700", "130706", "130706001", "130706002"
GRID, GRID2 = "130706001001001", "130706001001002"
COMMUNITY = "130706001001"
FAR_GRID = "130706002001001"  # another township of the same district
TODAY = datetime.now(UTC).date().isoformat()


def id_number(seq: int) -> str:
    base = f"13070619900101{seq:03d}"
    return base + id_check_digit(base)


PEOPLE = [
    {"id_number": id_number(i), "name": f"测试居民{i}", "phone": f"1390000{i:04d}",
     "household": f"幸福小区{i}号楼", "kind": kind, "grid": GRID, "arrived": TODAY}
    for i, kind in enumerate(("permanent", "floating", "rental"), start=1)
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("registry") / "data")
    yield running
    running.stop()


def token(server: RunningServer, user: str, role: str, center: str | None, **claims: str) -> str:
    embedded: Any = server.embedded
    issued: str = embedded.tokens.issue(user, role, center, **claims)
    return issued


def call(server: RunningServer, method: str, path: str, who: tuple[str, str, str | None],
         body: Any = None, **claims: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token(server, *who, **claims)}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return httpx.request(method, f"{server.url}{path}", headers=headers,
                         content=orjson.dumps(body) if body is not None else None)


ADMIN = ("root", "admin", None)
TOWN = ("t1", "township_officer", TOWNSHIP)
DIST = ("d1", "district_officer", DISTRICT)
CITY_OFFICER = ("c1", "city_officer", CITY)
WORKER = ("gw-130706001001001", "grid_worker", GRID)


def figures(server: RunningServer, unit: str) -> dict[str, Any]:
    answer = call(server, "GET", f"/api/population?center={unit}", ADMIN)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def test_arrival_move_and_departure_change_every_level_and_a_console_sees_it(
        server: RunningServer) -> None:
    before = {u: figures(server, u) for u in (GRID, COMMUNITY, TOWNSHIP, DISTRICT, CITY,
                                             FAR_GRID, OTHER_TOWNSHIP)}

    async def watch() -> list[dict[str, Any]]:
        url = server.console_url(TOWNSHIP, token(server, *TOWN))
        async with websockets.connect(url) as ws:
            snapshot = orjson.loads(await ws.recv())
            assert snapshot["type"] == "snapshot"
            created = await asyncio.to_thread(
                call, server, "POST", "/api/residents", WORKER, PEOPLE[0])
            assert created.status_code == 201, created.text
            frames = []
            while True:
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                frames.append(frame)
                paths = [c["path"] for c in frame.get("changes", [])]
                if ["population", "units", GRID, "total"] in paths:
                    return frames

    frames = asyncio.run(watch())
    text = orjson.dumps(frames).decode()
    assert PEOPLE[0]["id_number"] not in text and PEOPLE[0]["phone"] not in text
    for person in PEOPLE[1:]:
        answer = call(server, "POST", "/api/residents", TOWN, person)
        assert answer.status_code == 201, answer.text
    after = {u: figures(server, u) for u in before}
    for unit in (GRID, COMMUNITY, TOWNSHIP, DISTRICT, CITY):
        assert after[unit]["total"] == before[unit]["total"] + 3, unit
        assert after[unit]["arrivals"] == before[unit]["arrivals"] + 3, unit
        assert after[unit]["floating"] == before[unit]["floating"] + 1, unit
    # Move the rental household to another township: the township changes, the district not.
    listed = call(server, "GET", f"/api/residents?grid={GRID}", ADMIN).json()["items"]
    rental = next(p for p in listed if p["kind"] == "rental")
    moved = call(server, "POST", f"/api/residents/{rental['id']}/move", DIST,
                 {"grid": FAR_GRID, "household": "新家园1号", "date": TODAY})
    assert moved.status_code == 403  # a district officer does not register residents
    moved = call(server, "POST", f"/api/residents/{rental['id']}/move", ADMIN,
                 {"grid": FAR_GRID, "household": "新家园1号", "date": TODAY})
    assert moved.status_code == 200, moved.text
    now = {u: figures(server, u) for u in before}
    assert now[GRID]["total"] == after[GRID]["total"] - 1
    assert now[TOWNSHIP]["departures"] == after[TOWNSHIP]["departures"] + 1
    assert now[FAR_GRID]["total"] == after[FAR_GRID]["total"] + 1
    assert now[OTHER_TOWNSHIP]["rental"] == after[OTHER_TOWNSHIP]["rental"] + 1
    assert now[DISTRICT]["total"] == after[DISTRICT]["total"]  # a move within the district
    assert now[CITY]["total"] == after[CITY]["total"]
    # Departure.
    permanent = next(p for p in listed if p["kind"] == "permanent")
    gone = call(server, "POST", f"/api/residents/{permanent['id']}/deregister", TOWN,
                {"reason": "moved abroad", "date": TODAY})
    assert gone.status_code == 200, gone.text
    final = {u: figures(server, u) for u in before}
    for unit in (GRID, COMMUNITY, TOWNSHIP, DISTRICT, CITY):
        assert final[unit]["total"] == now[unit]["total"] - 1, unit
        assert final[unit]["permanent"] == now[unit]["permanent"] - 1, unit
        assert final[unit]["departures"] == now[unit]["departures"] + 1, unit
    child = next(c for c in final[COMMUNITY]["children"] if c["id"] == GRID)
    assert child["total"] == final[GRID]["total"]
    csv_text = call(server, "GET", f"/api/population.csv?center={TOWNSHIP}", ADMIN).text
    assert COMMUNITY in csv_text and "total" in csv_text.splitlines()[0]


def test_a_wrong_check_digit_is_a_422_naming_the_field(server: RunningServer) -> None:
    person = dict(PEOPLE[0], id_number=PEOPLE[0]["id_number"][:17] + (
        "0" if PEOPLE[0]["id_number"][17] != "0" else "1"))
    answer = call(server, "POST", "/api/residents", TOWN, person)
    assert answer.status_code == 422
    assert answer.json()["field"] == "id_number" and "check digit" in answer.json()["detail"]
    assert person["id_number"] not in answer.text
    for field, value in (("kind", "tourist"), ("grid", TOWNSHIP), ("arrived", "yesterday"),
                         ("phone", "call me")):
        answer = call(server, "POST", "/api/residents", TOWN, dict(PEOPLE[1], **{field: value}))
        assert answer.status_code == 422, (field, answer.text)
        assert answer.json()["field"] == field
    assert call(server, "POST", "/api/residents", TOWN, {**PEOPLE[1], "x": 1}).status_code == 422


def test_a_person_registered_elsewhere_is_a_409_with_a_move_hint(server: RunningServer) -> None:
    base = "13070619751111010"
    person = {"id_number": base + id_check_digit(base), "name": "张三", "phone": "13811112222",
              "household": "1号院", "kind": "permanent", "grid": GRID2, "arrived": TODAY}
    assert call(server, "POST", "/api/residents", TOWN, person).status_code == 201
    assert call(server, "POST", "/api/residents", TOWN, person).status_code == 200  # the same
    elsewhere = call(server, "POST", "/api/residents", ADMIN, dict(person, grid=FAR_GRID))
    assert elsewhere.status_code == 409
    assert elsewhere.json()["hint"] == "move" and elsewhere.json()["registered_in"] == GRID2
    # Out of the township's jurisdiction: refused.
    assert call(server, "POST", "/api/residents", TOWN,
                dict(person, grid=FAR_GRID)).status_code == 403
    # The arrival's township follows the hint: it moves the person in from the other township.
    far_officer = ("t2", "township_officer", OTHER_TOWNSHIP)
    hinted = call(server, "POST", "/api/residents", far_officer, dict(person, grid=FAR_GRID))
    assert hinted.status_code == 409
    resident = hinted.json()["resident"]
    outsider = ("t9", "township_officer", "130706200")  # neither the origin nor the arrival
    body = {"grid": FAR_GRID, "household": "新家", "date": TODAY}
    assert call(server, "POST", f"/api/residents/{resident}/move", outsider,
                body).status_code == 403
    moved = call(server, "POST", f"/api/residents/{resident}/move", far_officer, body)
    assert moved.status_code == 200 and moved.json()["grid"] == FAR_GRID
    assert moved.json()["id_number"] == person["id_number"]  # its own township's officer
    # Now in the other township: the first township may no longer deregister them.
    assert call(server, "POST", f"/api/residents/{resident}/deregister", TOWN,
                {"reason": "x", "date": TODAY}).status_code == 403


def test_masking_holds_in_every_route_for_roles_without_access(server: RunningServer) -> None:
    seeded = []
    for i in range(20, 23):
        base = f"13070619880201{i:03d}"
        person = {"id_number": base + id_check_digit(base), "name": f"遮蔽{i}",
                  "phone": f"1370000{i:04d}", "household": "2号院", "kind": "floating",
                  "grid": GRID, "arrived": TODAY}
        created = call(server, "POST", "/api/residents", ADMIN, person)
        assert created.status_code == 201, created.text
        seeded.append((person, created.json()["id"]))
    secrets = [s for person, _ in seeded for s in (person["id_number"], person["phone"])]
    rid = seeded[0][1]
    routes = ["/api/centers", "/api/directory", f"/api/population?center={TOWNSHIP}",
              f"/api/population.csv?center={GRID}", f"/api/registry/roster?center={TOWNSHIP}",
              f"/api/registry/roster.csv?center={TOWNSHIP}", f"/api/residents?grid={GRID}",
              f"/api/residents.csv?grid={GRID}", f"/api/residents/{rid}",
              f"/api/centers/{TOWNSHIP}/view", f"/api/centers/{CITY}/view", "/api/incidents",
              "/openapi.json", "/healthz"]
    masked_roles = [DIST, CITY_OFFICER, WORKER, ("aud", "auditor", None),
                    ("t2", "township_officer", OTHER_TOWNSHIP)]
    seen_ok = 0
    for who in masked_roles:
        for route in routes:
            answer = call(server, "GET", route, who)
            seen_ok += answer.status_code == 200
            for secret in secrets:
                assert secret not in answer.text, (who, route)
    # Commands answer the resident too: masked for a grid worker.
    corrected = call(server, "POST", f"/api/residents/{rid}/correct", WORKER,
                     {"household": "3号院"})
    assert corrected.status_code == 200, corrected.text
    assert all(s not in corrected.text for s in secrets) and corrected.json()["masked"]
    assert seen_ok > 30  # the walk read real answers, not just refusals
    # The township's own officer and an admin see them whole.
    for who in (TOWN, ADMIN):
        answer = call(server, "GET", f"/api/residents/{rid}", who)
        assert answer.json()["id_number"] == seeded[0][0]["id_number"]


def report(server: RunningServer, grid: str) -> str:
    answer = httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
        "source": "hotline", "category": "garbage", "severity": "routine", "grid": grid,
        "description": "rubbish"})
    assert answer.status_code == 201, answer.text
    incident: str = answer.json()["id"]
    accepted = httpx.post(f"{server.url}/api/incidents/{incident}/accept",
                          headers=server.headers, json={})
    assert accepted.status_code == 200, accepted.text
    return incident


def dispatch(server: RunningServer, incident: str, kind: str, target: str) -> httpx.Response:
    due = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    return httpx.post(f"{server.url}/api/incidents/{incident}/dispatch", headers=server.headers,
                      json={"assignee": {"kind": kind, "id": target}, "due": due})


def test_dispatch_only_to_registered_targets_serving_the_grid(server: RunningServer) -> None:
    incident = report(server, GRID)
    wrong = dispatch(server, incident, "grid_worker", "gw-130706001001002")
    assert wrong.status_code == 422
    assert "gw-130706001001002" in wrong.json()["detail"] and GRID in wrong.json()["detail"]
    unknown = dispatch(server, incident, "party", "nobody")
    assert unknown.status_code == 422 and "nobody" in unknown.json()["detail"]
    far = report(server, "130702001001001") if "130702001001001" in server.embedded.jurisdiction \
        else None  # type: ignore[attr-defined]
    if far is not None:
        outside = dispatch(server, far, "party", "xhy_property")  # serves 130706 only
        assert outside.status_code == 422 and "130702001001001" in outside.json()["detail"]
    ok = dispatch(server, incident, "grid_worker", "gw-130706001001001")
    assert ok.status_code == 200, ok.text
    roster = call(server, "GET", f"/api/registry/roster?center={TOWNSHIP}", TOWN).json()
    worker = next(w for w in roster["grid_workers"] if w["id"] == "gw-130706001001001")
    assert worker["workload"]["open"] >= 1 and GRID in worker["lead_of"]


def test_a_released_worker_gets_401_and_the_grid_shows_unstaffed(server: RunningServer) -> None:
    worker = ("gw-130706001001003", "grid_worker", "130706001001003")
    assert call(server, "GET", "/api/centers", worker).status_code == 200
    released = call(server, "POST", "/api/registry/workers/gw-130706001001003/release", TOWN,
                    {"reason": "resigned"})
    assert released.status_code == 200, released.text
    assert call(server, "GET", "/api/centers", worker).status_code == 401
    roster = call(server, "GET", f"/api/registry/roster?center={TOWNSHIP}", TOWN).json()
    assert "130706001001003" in roster["unstaffed_grids"]
    directory = call(server, "GET", "/api/directory", TOWN).json()
    assert all(w["id"] != "gw-130706001001003" for w in directory["grid_workers"])
    # A new worker appointed and assigned as lead staffs it again and appears in the directory.
    appointed = call(server, "POST", "/api/registry/workers", TOWN,
                     {"id": "gw-new-1", "name": {"zh": "新网格员", "en": "New Worker"},
                      "employment": "part_time"})
    assert appointed.status_code == 201, appointed.text
    assigned = call(server, "POST", "/api/registry/workers/gw-new-1/assign", TOWN,
                    {"grid": "130706001001003", "lead": True})
    assert assigned.status_code == 200, assigned.text
    trained = call(server, "POST", "/api/registry/workers/gw-new-1/training", TOWN,
                   {"course": "Grid basics", "date": TODAY})
    assert trained.status_code == 200 and trained.json()["trainings"] == [
        {"course": "Grid basics", "date": TODAY}]
    roster = call(server, "GET", f"/api/registry/roster?center={TOWNSHIP}", TOWN).json()
    assert "130706001001003" not in roster["unstaffed_grids"]
    directory = call(server, "GET", "/api/directory", TOWN).json()
    assert any(w["id"] == "gw-new-1" for w in directory["grid_workers"])
    # Out of jurisdiction and bad input.
    assert call(server, "POST", "/api/registry/workers/gw-new-1/assign", TOWN,
                {"grid": FAR_GRID}).status_code == 403
    assert call(server, "POST", "/api/registry/workers/gw-new-1/assign", TOWN,
                {"grid": "nope"}).status_code == 422
    assert call(server, "POST", "/api/registry/workers/nobody/release", TOWN,
                {"reason": "x"}).status_code == 404
    assert call(server, "POST", "/api/registry/workers", TOWN,
                {"id": "x", "name": "plain", "employment": "full_time"}).status_code == 422


def test_a_party_registered_over_http_becomes_a_dispatch_target(server: RunningServer) -> None:
    party = {"id": "sunshine_volunteers", "kind": "volunteer_group",
             "name": {"zh": "阳光志愿者", "en": "Sunshine Volunteers"}, "serves": [TOWNSHIP],
             "categories": ["garbage"]}
    assert call(server, "POST", "/api/registry/parties", TOWN, party).status_code == 201
    assert call(server, "POST", "/api/registry/parties", TOWN, party).status_code == 200
    assert call(server, "POST", "/api/registry/parties", TOWN,
                dict(party, serves=[OTHER_TOWNSHIP])).status_code == 403
    assert call(server, "POST", "/api/registry/parties", TOWN,
                dict(party, kind="club")).status_code == 422
    incident = report(server, GRID)
    assert dispatch(server, incident, "party", "sunshine_volunteers").status_code == 200
    far = report(server, FAR_GRID)
    refused = dispatch(server, far, "party", "sunshine_volunteers")
    assert refused.status_code == 422 and FAR_GRID in refused.json()["detail"]


def test_id_numbers_and_phones_are_never_logged(server: RunningServer,
                                                caplog: pytest.LogCaptureFixture) -> None:
    base = "13070619660606066"
    person = {"id_number": base + id_check_digit(base), "name": "孙日志", "phone": "13566667777",
              "household": "9号院", "kind": "rental", "grid": GRID2, "arrived": TODAY}
    bad = dict(person, id_number=base + ("0" if id_check_digit(base) != "0" else "1"))
    with caplog.at_level(logging.DEBUG):
        assert call(server, "POST", "/api/residents", TOWN, bad).status_code == 422
        created = call(server, "POST", "/api/residents", TOWN, person)
        assert created.status_code == 201
        assert call(server, "POST", "/api/residents", ADMIN,
                    dict(person, grid=FAR_GRID)).status_code == 409
        assert call(server, "GET", f"/api/residents/{created.json()['id']}", TOWN).status_code \
            == 200
    assert caplog.records  # the server did log (at DEBUG) while these ran
    for secret in (person["id_number"], bad["id_number"], person["phone"]):
        assert secret not in caplog.text


def test_a_worker_of_two_grids_is_offered_for_both(server: RunningServer) -> None:
    grid3 = "130706001001004"
    assert call(server, "POST", "/api/registry/workers", TOWN, {
        "id": "gw-two", "name": {"zh": "两格", "en": "Two Grids"},
        "employment": "full_time"}).status_code == 201
    for grid in (GRID2, grid3):
        assert call(server, "POST", "/api/registry/workers/gw-two/assign", TOWN,
                    {"grid": grid, "lead": False}).status_code == 200
    directory = call(server, "GET", "/api/directory", TOWN).json()
    assert sorted(w["grid"] for w in directory["grid_workers"] if w["id"] == "gw-two") == \
        sorted([GRID2, grid3])
    incident = report(server, grid3)
    assert dispatch(server, incident, "grid_worker", "gw-two").status_code == 200
    unassigned = call(server, "POST", "/api/registry/workers/gw-two/unassign", TOWN,
                      {"grid": grid3})
    assert unassigned.status_code == 200 and unassigned.json()["grids"] == [GRID2]
    other = report(server, grid3)
    assert dispatch(server, other, "grid_worker", "gw-two").status_code == 422


def test_bad_registry_input_is_a_clear_4xx(server: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {token(server, *ADMIN)}"}

    def raw(method: str, path: str, content: bytes | None = None,
            ctype: str | None = "application/json") -> httpx.Response:
        sent = dict(headers, **({"Content-Type": ctype} if ctype else {}))
        return httpx.request(method, f"{server.url}{path}", headers=sent, content=content)

    assert raw("POST", "/api/residents", b"{}", "text/plain").status_code == 415
    assert raw("POST", "/api/residents", b"{not json").status_code == 400
    assert raw("POST", "/api/residents", b"[1, 2]").status_code == 400
    assert raw("POST", "/api/residents", b"x" * (2 << 20)).status_code == 413  # every route's limit
    assert call(server, "POST", "/api/residents", ADMIN, {**PEOPLE[0], "id_number": 5}).json()[
        "field"] \
        == "id_number"
    assert call(server, "POST", "/api/residents/not-a-uuid/move", ADMIN,
                {"grid": GRID, "household": "h", "date": TODAY}).status_code == 404
    assert call(server, "POST", "/api/residents/x/fly", ADMIN, {}).status_code == 404
    assert call(server, "POST", "/api/registry/workers/x/promote", ADMIN, {}).status_code == 404
    assert call(server, "GET", "/api/population", ADMIN).status_code == 400
    assert call(server, "GET", "/api/population?center=nowhere", ADMIN).status_code == 404
    assert call(server, "GET", "/api/registry/roster?center=" + "9" * 100, ADMIN).status_code \
        == 404
    for query in ("grid=nowhere", f"grid={GRID}&limit=0", f"grid={GRID}&limit=x",
                  f"grid={GRID}&limit=501"):
        assert call(server, "GET", f"/api/residents?{query}", ADMIN).status_code == 422, query
    base = "13070619770707077"
    person = {"id_number": base + id_check_digit(base), "name": "错误", "phone": "13512121212",
              "household": "5号", "kind": "permanent", "grid": GRID2, "arrived": TODAY}
    rid = call(server, "POST", "/api/residents", ADMIN, person).json()["id"]
    same = call(server, "POST", f"/api/residents/{rid}/move", ADMIN,
                {"grid": GRID2, "household": "h", "date": TODAY})
    assert same.status_code == 422 and same.json()["field"] == "grid"
    assert call(server, "POST", f"/api/residents/{rid}/correct", ADMIN,
                {"grid": GRID}).status_code == 422  # not correctable: use move
    assert call(server, "POST", f"/api/residents/{rid}/correct", ADMIN, {}).status_code == 422
    assert call(server, "POST", f"/api/residents/{rid}/deregister", ADMIN,
                {"reason": "left", "date": "2026-02-30"}).json()["field"] == "date"
    assert call(server, "POST", f"/api/residents/{rid}/deregister", ADMIN,
                {"reason": "left", "date": TODAY}).status_code == 200
    again = call(server, "POST", f"/api/residents/{rid}/deregister", ADMIN,
                 {"reason": "left", "date": TODAY})
    assert again.status_code == 409 and "deregistered" in again.json()["detail"]
    # Registered again on a new arrival.
    assert call(server, "POST", "/api/residents", ADMIN, person).status_code == 201
    assert call(server, "POST", "/api/registry/workers", ADMIN, {
        "id": "gw-once", "name": {"zh": "一次", "en": "Once"},
        "employment": "full_time"}).status_code == 201
    assert call(server, "POST", "/api/registry/workers/gw-once/release", ADMIN,
                {"reason": "left"}).status_code == 200
    assert call(server, "POST", "/api/registry/workers/gw-once/release", ADMIN,
                {"reason": "left"}).status_code == 409
    assert call(server, "POST", "/api/registry/workers", ADMIN, {
        "id": "gw-once", "name": {"zh": "一次", "en": "Once"},
        "employment": "full_time"}).status_code == 409  # a released id is not reused
    assert call(server, "POST", "/api/registry/parties", ADMIN, {
        "id": "p", "kind": "department", "name": {"zh": "p", "en": "p"}, "serves": ["nowhere"],
        "categories": ["x"]}).json()["field"] == "serves"
