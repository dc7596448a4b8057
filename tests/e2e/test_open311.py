"""Open311 GeoReport v2 against a real server: the lifecycle of a request in JSON and in XML,
every filter of GET requests, and every error in Open311's error format (issue #16)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree as SafeET

from tests.conftest import RunningServer, start_server
from tests.e2e.alerting import Console

pytestmark = pytest.mark.e2e

BASE = "/open311/v2"
TOWNSHIP = "130706001"  # the client's key is limited to it
GRID = "130706001001001"
INSIDE = {"lat": "40.4085", "long": "115.136"}  # in GRID
OTHER_TOWNSHIP_POINT = {"lat": "40.4085", "long": "115.336"}  # in grid 130706200001001
OUTSIDE = {"lat": "30.0", "long": "100.0"}
DUE = "2026-12-01T08:00:00+08:00"
HOUSING = "住房和城乡建设局 Housing Bureau"


class Open311Client:
    def __init__(self, server: RunningServer, key: str) -> None:
        self.server = server
        self.key = key
        self.http = httpx.Client(base_url=server.url, timeout=15)

    def post(self, fmt: str = "json", key: str | None = None, **fields: str) -> httpx.Response:
        form = {"api_key": self.key if key is None else key, **fields}
        return self.http.post(f"{BASE}/requests.{fmt}", data=form)

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(f"{BASE}/{path}", params={"api_key": self.key, **params})

    def officer(self, incident: str, action: str, **body: Any) -> None:
        response = self.http.post(f"/api/incidents/{incident}/{action}", json=body,
                                  headers=self.server.headers)
        assert response.status_code == 200, (action, response.text)


@pytest.fixture
def open311(tmp_path: Any) -> Iterator[Open311Client]:
    server = start_server(tmp_path / "data")
    _id, key = server.embedded.keys.issue("open311-app", center=TOWNSHIP)  # type: ignore[attr-defined]
    client = Open311Client(server, key)
    yield client
    client.http.close()
    server.stop()


def xml_items(response: httpx.Response, root: str = "service_requests") -> list[dict[str, Any]]:
    """The items of an Open311 XML document, each as {tag: text}."""
    assert response.headers["content-type"].startswith("text/xml"), response.headers
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    tree = SafeET.fromstring(response.content)
    assert tree.tag == root, tree.tag
    return [{child.tag: child.text for child in item} for item in tree]


def one(client: Open311Client, fmt: str, incident: str) -> dict[str, Any]:
    response = client.get(f"requests/{incident}.{fmt}")
    assert response.status_code == 200, response.text
    items = response.json() if fmt == "json" else xml_items(response)
    assert len(items) == 1
    return items[0]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_request_from_report_to_closed(open311: Open311Client, fmt: str) -> None:
    posted = open311.post(fmt, service_code="noise", description="drilling at 2 am",
                          first_name="Li", last_name="Wei", phone="13800000000",
                          email="li@example.org", **{"attribute[time_of_day]": "night"},
                          **INSIDE)
    assert posted.status_code == 201, posted.text
    [created] = posted.json() if fmt == "json" else xml_items(posted)
    incident = created["service_request_id"]

    # It is an incident from open311 with its reporter, on the township's console.
    detail = httpx.get(f"{open311.server.url}/api/incidents/{incident}",
                       headers=open311.server.headers).json()
    assert (detail["source"], detail["category"], detail["grid"]) == ("open311", "noise", GRID)
    assert detail["reporter"] == {"name": "Li Wei", "phone": "13800000000",
                                  "email": "li@example.org"}
    assert detail["description"].startswith("drilling at 2 am\nWhen does it happen?")
    assert detail["timeline"][0]["actor"]["user"] == "feed:open311-app"

    async def on_console() -> None:
        console = await Console.open(open311.server, TOWNSHIP)
        try:
            await console.wait_for(lambda view: incident in view["queue"])
        finally:
            await console.close()

    asyncio.run(on_console())
    fresh = one(open311, fmt, incident)
    assert (fresh["status"], fresh["service_code"]) == ("open", "noise")
    assert fresh["agency_responsible"] in (None, "")

    open311.officer(incident, "accept")
    open311.officer(incident, "dispatch", assignee={"kind": "department", "id": "housing"},
                    due=DUE)
    dispatched = one(open311, fmt, incident)
    assert dispatched["status"] == "open"
    assert dispatched["agency_responsible"] == HOUSING
    assert datetime.fromisoformat(dispatched["expected_datetime"]) == datetime.fromisoformat(DUE)
    assert HOUSING in dispatched["status_notes"]

    open311.officer(incident, "acknowledge")
    open311.officer(incident, "resolve", outcome="site closed at night")
    open311.officer(incident, "return-visit", satisfaction=5)
    open311.officer(incident, "close")
    closed = one(open311, fmt, incident)
    assert closed["status"] == "closed"
    assert "site closed at night" in closed["status_notes"]
    listed = open311.get(f"requests.{fmt}", status="closed")
    ids = [r["service_request_id"] for r in (listed.json() if fmt == "json" else xml_items(listed))]
    assert ids == [incident]
    token = open311.get(f"tokens/{incident}.{fmt}")
    assert token.status_code == 200
    [found] = token.json() if fmt == "json" else xml_items(token)
    assert found == {"service_request_id": incident, "token": incident}


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_discovery_services_and_definitions(open311: Open311Client, fmt: str) -> None:
    services = open311.get(f"services.{fmt}")
    assert services.status_code == 200
    items = services.json() if fmt == "json" else xml_items(services, "services")
    by_code = {s["service_code"]: s for s in items}
    assert {"noise", "garbage", "fire_hazard"} <= set(by_code)
    assert by_code["noise"]["metadata"] in (True, "true")
    assert by_code["garbage"]["metadata"] in (False, "false")
    definition = open311.get(f"services/noise.{fmt}")
    assert definition.status_code == 200
    if fmt == "json":
        attributes = definition.json()["attributes"]
        assert attributes[0]["code"] == "time_of_day" and attributes[0]["required"] is True
        assert [v["key"] for v in attributes[0]["values"]] == ["day", "night"]
    else:
        tree = SafeET.fromstring(definition.content)
        assert tree.tag == "service_definition"
        keys = [k.text for k in tree.iter("key")]
        assert keys == ["day", "night"]
    found = open311.get(f"discovery.{fmt}")
    assert found.status_code == 200
    text = found.text
    assert "http://wiki.open311.org/GeoReport_v2" in text and "/open311/v2" in text


def test_every_filter_of_get_requests(open311: Open311Client) -> None:
    def post(code: str, **extra: str) -> str:
        response = open311.post(service_code=code, description=f"a {code}", **INSIDE, **extra)
        assert response.status_code == 201, response.text
        return str(response.json()[0]["service_request_id"])

    noise = post("noise", **{"attribute[time_of_day]": "day"})
    garbage = post("garbage")
    leak = post("water_leak", **{"attribute[floor]": "3"})
    open311.officer(garbage, "reject", reason="not in our remit")

    def ids(**params: str) -> set[str]:
        response = open311.get("requests.json", **params)
        assert response.status_code == 200, response.text
        return {r["service_request_id"] for r in response.json()}

    assert ids() == {noise, garbage, leak}  # default: the last 90 days
    assert ids(service_request_id=f"{noise},{leak}") == {noise, leak}
    assert ids(service_code="garbage") == {garbage}
    assert ids(service_code="noise,water_leak") == {noise, leak}
    assert ids(status="closed") == {garbage}
    assert ids(status="open") == {noise, leak}
    assert ids(status="open,closed") == {noise, garbage, leak}
    now = datetime.now(UTC)
    assert ids(start_date=(now - timedelta(hours=1)).isoformat()) == {noise, garbage, leak}
    assert ids(start_date=(now + timedelta(hours=1)).isoformat()) == set()
    assert ids(end_date=(now - timedelta(hours=1)).isoformat()) == set()
    assert ids(start_date=(now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               end_date=(now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               service_code="noise", status="open") == {noise}
    assert ids(service_request_id=garbage, status="closed") == {garbage}
    # Another township's key sees none of them.
    _id, other = open311.server.embedded.keys.issue(  # type: ignore[attr-defined]
        "open311-other", center="130706200")
    response = open311.get("requests.json", api_key=other)
    assert response.status_code == 200 and response.json() == []


def errors_of(response: httpx.Response, status: int, *words: str, fmt: str = "json") -> str:
    assert response.status_code == status, response.text
    if fmt == "json":
        assert response.headers["content-type"].startswith("application/json")
        [error] = response.json()
    else:
        [error] = xml_items(response, "errors")
        error["code"] = int(error["code"])
    assert error["code"] == status
    for word in words:
        assert word in error["description"], error["description"]
    return str(error["description"])


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_every_error_in_open311_format(open311: Open311Client, fmt: str) -> None:
    post = open311.post
    errors_of(post(fmt, service_code="graffiti", **INSIDE), 400, "graffiti", "services.json",
              fmt=fmt)
    errors_of(post(fmt, **INSIDE), 400, "service_code was not provided", fmt=fmt)
    errors_of(open311.get(f"services/graffiti.{fmt}"), 404, "graffiti", fmt=fmt)
    errors_of(post(fmt, service_code="garbage"), 400, "location is missing", fmt=fmt)
    errors_of(post(fmt, service_code="garbage", lat="40.4"), 400, "lat and long go together",
              fmt=fmt)
    errors_of(post(fmt, service_code="garbage", lat="north", long="115"), 400, "lat must be",
              fmt=fmt)
    errors_of(post(fmt, service_code="garbage", lat="95", long="115"), 400, "between -90", fmt=fmt)
    errors_of(post(fmt, service_code="garbage", **OUTSIDE), 422, "outside the jurisdiction",
              fmt=fmt)
    errors_of(post(fmt, service_code="garbage", address_string="somewhere unknown"), 422,
              "names no grid", fmt=fmt)
    errors_of(post(fmt, key="", service_code="garbage", **INSIDE), 403, "not provided", fmt=fmt)
    errors_of(post(fmt, key="lk_000000000000_nope", service_code="garbage", **INSIDE), 403,
              "not valid", fmt=fmt)
    unlimited = open311.server.feed_headers["X-API-Key"]  # a feed key with no center
    errors_of(post(fmt, key=unlimited, service_code="garbage", **INSIDE), 403,
              "not limited to a city, district or township", fmt=fmt)
    errors_of(post(fmt, service_code="garbage", **OTHER_TOWNSHIP_POINT), 403, "130706001", fmt=fmt)
    errors_of(post(fmt, service_code="noise", **INSIDE), 400, "attribute[time_of_day] is required",
              fmt=fmt)
    errors_of(post(fmt, service_code="noise", **INSIDE, **{"attribute[time_of_day]": "dusk"}),
              400, "must be one of day, night", fmt=fmt)
    errors_of(post(fmt, service_code="noise", **INSIDE, **{"attribute[time_of_day]": "day",
                                                         "attribute[since]": "yesterday"}),
              400, "ISO 8601", fmt=fmt)
    errors_of(post(fmt, service_code="water_leak", **INSIDE, **{"attribute[floor]": "3rd"}),
              400, "must be a number", fmt=fmt)
    errors_of(post(fmt, service_code="garbage", **INSIDE, **{"attribute[colour]": "red"}), 400,
              "not an attribute", fmt=fmt)
    errors_of(post(fmt, service_code="garbage", **INSIDE, favourite="x"), 400,
              "not a GeoReport v2 field", fmt=fmt)
    errors_of(post(fmt, service_code="garbage", **INSIDE, description="x" * 4001), 400,
              "at most 4000", fmt=fmt)
    errors_of(post(fmt, service_code="garbage", **INSIDE, media_url="javascript:alert(1)"), 400,
              "http(s) URL", fmt=fmt)
    errors_of(post(fmt, service_code="garbage", **INSIDE, email="not-an-email"), 400, "email",
              fmt=fmt)
    errors_of(post(fmt, service_code="garbage", **INSIDE, jurisdiction_id="nyc.gov"), 404,
              "nyc.gov", fmt=fmt)
    twice = open311.http.post(f"{BASE}/requests.{fmt}", content=(
        f"api_key={open311.key}&service_code=garbage&service_code=noise&lat=40.4085&long=115.136"),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    errors_of(twice, 400, "given twice", fmt=fmt)
    as_json = open311.http.post(f"{BASE}/requests.{fmt}", json={"service_code": "garbage"})
    errors_of(as_json, 415, "application/x-www-form-urlencoded", fmt=fmt)
    big = open311.http.post(f"{BASE}/requests.{fmt}", content=b"a=" + b"x" * 70_000,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    errors_of(big, 413, "at most", fmt=fmt)
    # GET: bad dates, statuses, codes, parameters, keys
    get = open311.get
    errors_of(get(f"requests.{fmt}", start_date="last week"), 400, "start_date must be", fmt=fmt)
    errors_of(get(f"requests.{fmt}", end_date="2026-11-05T08:15:30"), 400, "with its offset",
              fmt=fmt)
    errors_of(get(f"requests.{fmt}", start_date="2026-11-05T00:00:00Z",
                  end_date="2026-11-04T00:00:00Z"), 400, "before start_date", fmt=fmt)
    errors_of(get(f"requests.{fmt}", start_date="2026-01-01T00:00:00Z",
                  end_date="2026-11-04T00:00:00Z"), 400, "more than 90 days", fmt=fmt)
    errors_of(get(f"requests.{fmt}", status="pending"), 400, "not an Open311 status", fmt=fmt)
    errors_of(get(f"requests.{fmt}", service_code="graffiti"), 400, "graffiti", fmt=fmt)
    errors_of(get(f"requests.{fmt}", page="2"), 400, "not a GeoReport v2 filter", fmt=fmt)
    errors_of(get(f"requests.{fmt}", service_request_id=",".join(f"x{i}" for i in range(101))), 400,
              "at most 100", fmt=fmt)
    errors_of(get(f"requests.{fmt}", api_key="lk_000000000000_nope"), 403, "not valid", fmt=fmt)
    errors_of(get(f"requests/not-an-id.{fmt}"), 404, "not found", fmt=fmt)
    errors_of(get(f"tokens/not-an-id.{fmt}"), 404, "not found", fmt=fmt)
    errors_of(get("services.csv"), 404, "expected .json or .xml")


def test_a_request_of_another_township_is_not_found_by_this_key(open311: Open311Client) -> None:
    _id, other = open311.server.embedded.keys.issue(  # type: ignore[attr-defined]
        "open311-other", center="130706200")
    made = open311.post(key=other, service_code="garbage", **OTHER_TOWNSHIP_POINT)
    assert made.status_code == 201, made.text
    incident = made.json()[0]["service_request_id"]
    errors_of(open311.get(f"requests/{incident}.json"), 404, "not found")
    assert one(Open311Client(open311.server, other), "json", incident)["status"] == "open"


def test_address_string_locates_a_grid_by_its_name(open311: Open311Client) -> None:
    made = open311.post(service_code="garbage",
                        address_string="城镇街道第一社区网格02 东门 / east gate")
    assert made.status_code == 201, made.text
    incident = made.json()[0]["service_request_id"]
    detail = httpx.get(f"{open311.server.url}/api/incidents/{incident}",
                       headers=open311.server.headers).json()
    assert detail["grid"] == "130706001001002" and detail["location"] is None
    assert "address: 城镇街道第一社区网格02" in detail["description"]


def test_a_revoked_key_is_refused(open311: Open311Client) -> None:
    keys = open311.server.embedded.keys  # type: ignore[attr-defined]
    key_id, key = keys.issue("open311-revoked", center=TOWNSHIP)
    assert open311.post(key=key, service_code="garbage", **INSIDE).status_code == 201
    assert keys.revoke(key_id)
    errors_of(open311.post(key=key, service_code="garbage", **INSIDE), 403, "not valid")
    errors_of(open311.get("requests.xml", api_key=key), 403, "not valid", fmt="xml")
