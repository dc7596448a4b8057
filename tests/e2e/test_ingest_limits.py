"""The same limits on every ingest path (issue #11 rows 6, 8, 9 and CAP), over real HTTP and
websockets against a real server, from the attack run's reproductions. MQTT's are in
test_ingest_mqtt.py."""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson
import pytest
from starlette.routing import Route
from websockets.asyncio.client import connect

from domain.ingest_limits import MAX_CAP_AREAS, MAX_JSON_DEPTH
from infra.security.api_keys import FeedNameTaken
from tests.conftest import RunningServer
from tests.e2e.alerting import CAMERA, CENTERS, GRID, alert, post_alerts, stored_events
from tests.e2e.test_ingest_cap import CAP_TYPE, cap

pytestmark = pytest.mark.ingest_modes  # every test: inline, and through the writer process


def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"]
    return str(body["detail"])


def nested(key: str, depth: int) -> bytes:
    """The attack run's body: an object whose `key` holds `depth` nested arrays."""
    return b'{"%s":' % key.encode() + b"[" * depth + b"]" * depth + b"}"


async def feed_reply(server: RunningServer, message: bytes | str) -> dict[str, Any]:
    async with connect(f"{server.ws_url}/ws/feed", additional_headers=server.feed_headers) as ws:
        await ws.send(message)
        reply: dict[str, Any] = orjson.loads(await ws.recv())
        return reply


# -- row 6: dates out of range -------------------------------------------------------------------

OUT_OF_RANGE = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "1969-12-31T23:59:59Z"]


@pytest.mark.parametrize("at", OUT_OF_RANGE)
def test_an_alert_time_out_of_range_in_utc_is_422_every_time_and_blocks_nothing_else(
    server: RunningServer, at: str,
) -> None:
    late = alert("late", at=at)
    del late["start_time"]
    before = stored_events(server)
    for _attempt in range(2):  # a retry is refused the same way: not a 503 "send it again"
        detail = problem(post_alerts(server, [alert("fine"), late]), 422)
        assert "alert #1: at" in detail and "1970-01-01T00:00:00Z" in detail
    assert stored_events(server) == before
    assert post_alerts(server, [alert("fine")]).status_code == 200  # the feed goes on without it


@pytest.mark.parametrize("sent", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
def test_a_cap_sent_time_out_of_range_in_utc_is_422(server: RunningServer, sent: str) -> None:
    body = cap("ZJK-T").replace(b"2027-01-15T08:00:00+08:00", sent.encode())
    before = stored_events(server)
    response = httpx.post(f"{server.url}/api/ingest/cap", content=body,
                          headers={**server.feed_headers, **CAP_TYPE})
    assert "CAP <sent>" in problem(response, 422)
    assert stored_events(server) == before


async def test_an_alert_time_out_of_range_on_the_feed_websocket_is_a_422_reply(
    server: RunningServer,
) -> None:
    late = alert("ws-late", at=OUT_OF_RANGE[0])
    del late["start_time"]
    reply = await feed_reply(server, orjson.dumps({"ref": "t", "alert": late}))
    assert (reply["type"], reply["ref"], reply["status"]) == ("error", "t", 422)
    assert "alert #0: at" in reply["detail"]


# -- row 8: deeply nested JSON -------------------------------------------------------------------


def fill_in(path: str, parameters: list[dict[str, Any]]) -> list[str]:
    """`path` with each of its path parameters' enum values in turn (every action of an
    /{action} route) and a UUID for the other ones (ids)."""
    filled = [path]
    for parameter in parameters:
        values = parameter.get("schema", {}).get("enum") if parameter.get("in") == "path" else None
        if values:
            name = "{" + parameter["name"] + "}"
            filled = [each.replace(name, str(value)) for each in filled for value in values]
    return [re.sub(r"\{[^/{}]+\}", "00000000-0000-0000-0000-000000000000", each)
            for each in filled]


def json_routes(server: RunningServer) -> list[str]:
    """Every POST path of /openapi.json that takes JSON, its ids filled in; checked to cover
    every POST route the app has (but the CAP route, which takes XML, and Open311's, which
    takes a form: tests/e2e/test_open311.py checks its limits)."""
    doc = httpx.get(f"{server.url}/openapi.json", headers=server.headers).json()
    paths = [filled
             for path, operations in doc["paths"].items()
             if "application/json" in operations.get("post", {}).get("requestBody", {})
             .get("content", {})
             for filled in fill_in(path, operations["post"].get("parameters", []))]
    app = server.server.config.app  # type: ignore[attr-defined]
    for route in app.routes:
        if isinstance(route, Route) and "POST" in (route.methods or ()) \
                and route.path not in ("/api/ingest/cap", "/open311/v2/requests.{format}"):
            assert any(route.path_regex.match(path) for path in paths), route.path
    return paths


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_400_on_every_json_route(server: RunningServer, depth: int) -> None:
    routes = json_routes(server)
    assert len(routes) >= 20
    for path in routes:
        headers = server.feed_headers if path.startswith("/api/ingest/") else server.headers
        for body in (nested("alerts", depth), nested("id", depth), nested("note", depth)):
            response = httpx.post(f"{server.url}{path}", content=body, timeout=30,
                                  headers={**headers, "content-type": "application/json"})
            detail = problem(response, 400)
            assert f"nested {depth + 1} levels deep" in detail, (path, detail)
            assert f"at most {MAX_JSON_DEPTH}" in detail


def test_nesting_just_past_the_limit_is_400_and_a_plain_misfit_is_still_422(
    server: RunningServer,
) -> None:
    assert "at most 32" in problem(post_alerts(server, orjson.loads(nested("id", 32))), 400)
    assert "$.id" in problem(post_alerts(server, orjson.loads(nested("id", 3))), 422)


async def test_deeply_nested_feed_websocket_messages_get_400_and_the_line_stays_open(
    server: RunningServer,
) -> None:
    async with connect(f"{server.ws_url}/ws/feed", additional_headers=server.feed_headers) as ws:
        for body in (nested("alert", 1000), nested("ref", 30_000), nested("alerts", 1000)):
            await ws.send(body)
            reply = orjson.loads(await ws.recv())
            assert (reply["type"], reply["status"]) == ("error", 400), reply
            assert "nested" in reply["detail"]
        await ws.send(orjson.dumps({"ref": "ok", "alert": alert("after-nested")}))
        ok = orjson.loads(await ws.recv())
        assert (ok["type"], ok["ref"], ok["created"]) == ("ack", "ok", 1)


async def test_a_feed_websocket_ref_must_be_flat(server: RunningServer) -> None:
    reply = await feed_reply(server, orjson.dumps({"ref": {"a": [1]}, "alert": alert("r")}))
    assert (reply["status"], reply["ref"]) == (422, None) and "$.ref" in reply["detail"]


async def test_a_deeply_nested_console_message_does_not_drop_the_console(
    server: RunningServer,
) -> None:
    async with connect(server.console_url(CENTERS[0]), max_size=None) as ws:
        await ws.send(nested("type", 1000).decode())  # first message: taken as no resume
        assert orjson.loads(await ws.recv())["type"] == "snapshot"
        await ws.send(nested("epoch", 30_000).decode())
        await ws.send('{"type": "ping"}')
        # The nested message is answered with an error frame (docs/PROTOCOL.md); the line stays
        # open and the ping after it is answered.
        errors = 0
        while (reply := orjson.loads(await ws.recv())) != {"type": "pong"}:
            assert reply["type"] == "error" and "expected" in reply["detail"], reply
            errors += 1
        assert errors >= 1


# -- the same limits on HTTP and the feed websocket ----------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("zones", [f"z{i}" for i in range(65)]),
    ("zones", ["z" * 129]),
    ("plate", "P" * 33),
    ("label", "L" * 129),
    ("description", "d" * 2001),
    ("id", "i" * 201),
])
async def test_an_alert_past_a_limit_is_422_naming_the_field_on_http_and_websocket(
    server: RunningServer, field: str, value: Any,
) -> None:
    body = alert("limits", **{field: value})
    assert f"alerts[0].{field}" in problem(post_alerts(server, [body]), 422)
    reply = await feed_reply(server, orjson.dumps({"alerts": [body]}))
    assert reply["status"] == 422 and f"alerts[0].{field}" in reply["detail"]


# -- row 9: a shared feed name crossing townships -------------------------------------------------


def other_township(server: RunningServer) -> tuple[str, str]:
    """(township, one of its grids) other than the test camera's township."""
    jurisdiction = server.embedded.jurisdiction  # type: ignore[attr-defined]
    township = next(u.id for u in jurisdiction.centers()
                    if u.level == "township" and u.id != CENTERS[0])
    return township, next(iter(jurisdiction.grids_under(township))).id


async def test_a_shared_feed_name_cannot_change_another_townships_alert(
    server: RunningServer,
) -> None:
    keys = server.embedded.keys  # type: ignore[attr-defined]
    town_b, grid_b = other_township(server)
    _id, key_a = keys.issue("rt-shared", center=CENTERS[0])
    with pytest.raises(FeedNameTaken, match="--shared"):
        keys.issue("rt-shared", center=town_b)  # a name is one key's unless explicitly shared
    _id, key_b = keys.issue("rt-shared", center=town_b, shared=True)
    url = f"{server.url}/api/ingest/alerts"
    raised = httpx.post(url, json={"id": "s-x", "grid": grid_b, "kind": "sensor",
                                   "start_time": 1_800_000_000}, headers={"X-API-Key": key_b})
    assert raised.status_code == 200, raised.text
    alert_ref = raised.json()["results"][0]["alert"]
    before = stored_events(server)
    forged = {"id": "s-x", "type": "end", "camera": CAMERA, "plate": "FORGED",
              "start_time": 1_800_000_000}
    detail = problem(httpx.post(url, json=forged, headers={"X-API-Key": key_a}), 403)
    assert town_b in detail
    reply = await feed_reply_with(server, key_a, {"ref": 9, "alert": {**forged, "type": "update"}})
    assert (reply["type"], reply["status"]) == ("error", 403)
    assert stored_events(server) == before
    stored = httpx.get(f"{server.url}/api/alerts/{alert_ref}", headers=server.headers).json()
    assert (stored["ended"], stored["plate"]) == (False, None)
    # The key of B's own township still ends its alert; A's own alerts are untouched by this.
    ended = httpx.post(url, json={**forged, "camera": None, "grid": grid_b, "kind": "sensor"},
                       headers={"X-API-Key": key_b})
    assert ended.json()["results"][0]["status"] == "ended"
    mine = httpx.post(url, json=alert("a-own"), headers={"X-API-Key": key_a})
    assert mine.status_code == 200, mine.text


async def feed_reply_with(server: RunningServer, key: str, message: dict[str, Any]) -> dict[str, Any]:
    async with connect(f"{server.ws_url}/ws/feed", additional_headers={"X-API-Key": key}) as ws:
        await ws.send(orjson.dumps(message))
        reply: dict[str, Any] = orjson.loads(await ws.recv())
        return reply


def test_rotating_a_key_keeps_its_feed_name(server: RunningServer) -> None:
    keys = server.embedded.keys  # type: ignore[attr-defined]
    keys.issue("rotated", center=CENTERS[0])
    keys.issue("rotated", center=CENTERS[0])  # same name, same township: a rotation
    with pytest.raises(FeedNameTaken):
        keys.issue("rotated")  # the same name without the township limit is another power


# -- CAP: areas and sizes --------------------------------------------------------------------------


def test_a_cap_message_with_thousands_of_areas_is_413_naming_the_limit(server: RunningServer) -> None:
    areas = "".join(f"<area><areaDesc>a{i}</areaDesc><circle>10.0,10.0 1</circle></area>"
                    for i in range(14_000))
    body = cap("ZJK-A", area="<circle>10.0,10.0 1</circle>").replace(
        b"<area>", areas.encode() + b"<area>", 1)
    assert len(body) > 900 * 1024
    before = stored_events(server)
    response = httpx.post(f"{server.url}/api/ingest/cap", content=body, timeout=30,
                          headers={**server.feed_headers, **CAP_TYPE})
    assert f"at most {MAX_CAP_AREAS} are accepted" in problem(response, 413)
    assert stored_events(server) == before
    at_limit = cap("ZJK-B").replace(b"<area>", b"<area><areaDesc>x</areaDesc></area>"
                                    * (MAX_CAP_AREAS - 1) + b"<area>", 1)
    assert httpx.post(f"{server.url}/api/ingest/cap", content=at_limit,
                      headers={**server.feed_headers, **CAP_TYPE}).status_code == 200


@pytest.mark.parametrize(("change", "words"), [
    ((b"<identifier>ZJK-L</identifier>", b"<identifier>" + b"i" * 300 + b"</identifier>"),
     "at most 200"),
    ((b"<urgency>Immediate</urgency>", b"<urgency>" + b"u" * 129 + b"</urgency>"),
     "CAP <urgency> is 129 characters long"),
    ((f"<geocode><valueName>grid</valueName><value>{GRID}</value></geocode>".encode(),
      b"<polygon>" + b"40.0,115.0 " * 2001 + b"</polygon>"), "at most 2000"),
])
def test_cap_texts_and_polygons_past_their_limits_are_422(
    server: RunningServer, change: tuple[bytes, bytes], words: str,
) -> None:
    body = cap("ZJK-L").replace(*change)
    response = httpx.post(f"{server.url}/api/ingest/cap", content=body,
                          headers={**server.feed_headers, **CAP_TYPE})
    assert words in problem(response, 422)
