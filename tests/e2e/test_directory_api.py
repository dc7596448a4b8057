"""`GET /api/directory` and `GET /api/centers` answer each user with the part they may watch;
a bad directory file stops the server at start, naming the entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.directory import DirectoryError
from infra.loaders.directory import DEFAULT_DIRECTORY
from tests.conftest import RunningServer, start_server

pytestmark = pytest.mark.e2e

CITY, DISTRICT, TOWNSHIP, OTHER_TOWNSHIP = "130700", "130706", "130706001", "130706002"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("directory") / "data")
    yield running
    running.stop()


def get(server: RunningServer, path: str, user: str, role: str, center: str | None,
        **claims: str) -> httpx.Response:
    embedded: Any = server.embedded
    token = embedded.tokens.issue(user, role, center, **claims)
    return httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"})


def nodes(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {tree["id"]: tree}
    for child in tree["children"]:
        found.update(nodes(child))
    return found


def test_a_township_officer_sees_its_branch_and_may_watch_only_its_township(
        server: RunningServer) -> None:
    tree = get(server, "/api/centers", "t1", "township_officer", TOWNSHIP).json()
    found = nodes(tree)
    assert tree["home"] == TOWNSHIP
    assert {i for i, n in found.items() if n["watchable"]} == {TOWNSHIP}
    assert found[CITY]["watchable"] is False and found[DISTRICT]["watchable"] is False
    assert OTHER_TOWNSHIP not in found and "130702" not in found  # siblings are left out
    assert "130706001001001" in found  # its grids, for their names


def test_a_district_officer_may_watch_its_district_and_its_townships(
        server: RunningServer) -> None:
    tree = get(server, "/api/centers", "d1", "district_officer", DISTRICT).json()
    found = nodes(tree)
    watchable = {i for i, n in found.items() if n["watchable"]}
    assert watchable == {DISTRICT, TOWNSHIP, OTHER_TOWNSHIP, "130706200", "130706201",
                         "130706202", "130706203"}
    assert found[CITY]["watchable"] is False and tree["home"] == DISTRICT


def test_a_city_officer_and_an_auditor_may_watch_every_center(server: RunningServer) -> None:
    embedded: Any = server.embedded
    centers = {u.id for u in embedded.jurisdiction.centers()}
    for role, center in (("city_officer", CITY), ("auditor", None)):
        tree = get(server, "/api/centers", "u", role, center).json()
        assert {i for i, n in nodes(tree).items() if n["watchable"]} == centers
        assert len(tree["children"]) == 16  # the whole tree, as before


def test_a_department_watches_no_center_but_still_gets_the_tree(server: RunningServer) -> None:
    tree = get(server, "/api/centers", "h1", "department", None, department="housing").json()
    found = nodes(tree)
    assert not any(n["watchable"] for n in found.values())
    assert tree["home"] is None and "130706001001001" in found


def test_the_directory_of_a_township_officer(server: RunningServer) -> None:
    response = get(server, "/api/directory", "t1", "township_officer", TOWNSHIP)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"parties", "grid_workers", "cameras", "roles"}
    parties = {p["id"]: p for p in body["parties"]}
    assert parties["housing"]["name"] == {"zh": "市住房和城乡建设局",
                                          "en": "City Housing and Construction Bureau"}
    assert parties["housing"]["kind"] == "department" and parties["housing"]["serves"] == [CITY]
    assert parties["xinyuan_property"]["assignee_kind"] == "party"
    assert "meikuang_property" not in parties  # serves another township
    assert {w["grid"][:9] for w in body["grid_workers"]} == {TOWNSHIP}
    camera = next(c for c in body["cameras"] if c["id"] == "cam-130706001001001-1")
    assert camera["name"] == {"zh": "城镇街道第一社区网格01 摄像头1",
                              "en": "Chengzhen Subdistrict No. 1 Community Grid 01 camera 1"}
    assert camera["place"]["en"] == "Chengzhen Subdistrict No. 1 Community Grid 01"
    assert {c["grid"][:9] for c in body["cameras"]} == {TOWNSHIP}
    assert body["roles"]["township_officer"] == {"zh": "乡镇街道值班员",
                                                 "en": "Township duty officer"}


def test_the_directory_of_a_department_names_itself(server: RunningServer) -> None:
    body = get(server, "/api/directory", "h1", "department", None, department="housing").json()
    assert [p["id"] for p in body["parties"]] == ["housing"]
    assert body["cameras"] == [] and body["grid_workers"] == []


def test_the_directory_needs_credentials(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/api/directory")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_a_bad_directory_file_stops_the_server_naming_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "directory.toml"
    bad.write_text(DEFAULT_DIRECTORY.read_text().replace(
        'id = "fire_rescue"\nkind = "department"', 'id = "fire_rescue"\nkind = "brigade"'))
    with pytest.raises(DirectoryError) as caught:
        start_server(tmp_path / "data", directory=bad)
    assert "party 'fire_rescue': kind must be one of" in str(caught.value)
    assert str(bad) in str(caught.value)


def test_a_department_lists_only_the_cases_dispatched_to_it(server: RunningServer) -> None:
    grid = "130706001001001"
    with httpx.Client(base_url=server.url, headers=server.headers) as officer:
        case = officer.post("/api/incidents", json={
            "source": "hotline", "category": "water_leak", "grid": grid,
            "description": "for housing"}).json()["id"]
        assert officer.post(f"/api/incidents/{case}/accept", json={}).status_code == 200
        assert officer.post(f"/api/incidents/{case}/dispatch", json={
            "assignee": {"kind": "department", "id": "housing"},
            "due": "2030-01-01T00:00:00+00:00",
            "due_reason": "long-term works"}).status_code == 200
    server.embedded.runner.catch_up()  # type: ignore[attr-defined]
    mine = get(server, f"/api/incidents?center={CITY}&assignee=department:housing&status=open",
               "h1", "department", None, department="housing")
    assert mine.status_code == 200, mine.text
    assert case in [item["id"] for item in mine.json()["items"]]
    assert all(item["assignee"] == "department:housing" for item in mine.json()["items"])
    for query in (f"center={CITY}&assignee=department:water_affairs",  # another's
                  f"center={CITY}"):  # everything
        refused = get(server, f"/api/incidents?{query}", "h1", "department", None,
                      department="housing")
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    worker = get(server, f"/api/incidents?center={TOWNSHIP}&assignee=grid_worker:gw-9",
                 "gw-9", "grid_worker", grid)
    assert worker.status_code == 200 and worker.json()["items"] == []
    other = get(server, f"/api/incidents?center={TOWNSHIP}&assignee=grid_worker:gw-8",
                "gw-9", "grid_worker", grid)
    assert other.status_code == 403
