"""POST /api/ingest/cap: OASIS CAP 1.2 XML over real HTTP, parsed safely."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.alerting import CENTERS, GRID, Console

pytestmark = pytest.mark.ingest_modes  # every test: inline, and through the writer process

CAP_TYPE = {"content-type": "application/cap+xml"}


def cap(identifier: str = "ZJK-2027-0001", severity: str = "Severe", area: str | None = None,
        msg_type: str = "Alert", references: str = "") -> bytes:
    area = area or f"<geocode><valueName>grid</valueName><value>{GRID}</value></geocode>"
    refs = f"<references>{references}</references>" if references else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>weather@zjk.example.cn</sender>
  <sent>2027-01-15T08:00:00+08:00</sent>
  <status>Actual</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>{refs}
  <info>
    <category>Met</category>
    <event>暴雪预警 blizzard</event>
    <urgency>Immediate</urgency>
    <severity>{severity}</severity>
    <certainty>Likely</certainty>
    <headline>暴雪橙色预警 / orange blizzard warning</headline>
    <area><areaDesc>网格01</areaDesc>{area}</area>
  </info>
</alert>""".encode()


def post(server: RunningServer, body: bytes, headers: dict[str, str] = CAP_TYPE) -> httpx.Response:
    return httpx.post(f"{server.url}/api/ingest/cap", content=body,
                      headers={**server.feed_headers, **headers})


async def test_cap_alert_reaches_the_consoles(server: RunningServer) -> None:
    console = await Console.open(server, CENTERS[1])
    response = post(server, cap())
    assert response.status_code == 200, response.text
    alert_id = response.json()["results"][0]["alert"]
    view = await console.wait_for(lambda v: alert_id in v["alerts"])
    assert view["alerts"][alert_id]["kind"] == "cap"
    again = post(server, cap())
    assert again.json()["duplicate"] == 1
    cancel = post(server, cap("ZJK-2027-0002", msg_type="Cancel",
                              references="weather@zjk.example.cn,ZJK-2027-0001,2027-01-15T08:00:00+08:00"))
    assert cancel.json()["results"][0] == {"alert": alert_id, "status": "ended"}
    await console.close()


def test_cap_extreme_opens_a_major_incident_by_rule(server: RunningServer) -> None:
    result = post(server, cap("ZJK-X", severity="Extreme")).json()["results"][0]
    assert result["rules"] == ["cap_extreme"]
    incident = httpx.get(f"{server.url}/api/incidents/{result['incident']}", headers=server.headers).json()
    assert incident["severity"] == "major" and incident["grid"] == GRID


def test_cap_circle_is_located_in_a_grid(server: RunningServer) -> None:
    grid = server.embedded.jurisdiction  # type: ignore[attr-defined]
    shape = grid.unit(GRID).geometry["coordinates"][0]
    lon = sum(p[0] for p in shape[:-1]) / (len(shape) - 1)
    lat = sum(p[1] for p in shape[:-1]) / (len(shape) - 1)
    response = post(server, cap("ZJK-C", area=f"<circle>{lat},{lon} 0.5</circle>"))
    assert response.status_code == 200, response.text


def test_cap_with_a_dtd_or_entities_is_refused_400(server: RunningServer) -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol2;</identifier></alert>"""
    response = post(server, bomb)
    assert response.status_code == 400 and "DTD" in response.json()["detail"]


def test_malformed_xml_is_400(server: RunningServer) -> None:
    response = post(server, b"<alert><identifier>x</alert>")
    assert response.status_code == 400 and "malformed XML" in response.json()["detail"]


def test_cap_missing_fields_or_unknown_area_is_422(server: RunningServer) -> None:
    missing = post(server, cap().replace(b"<identifier>ZJK-2027-0001</identifier>", b""))
    assert missing.status_code == 422 and "<identifier>" in missing.json()["detail"]
    nowhere = post(server, cap("ZJK-N", area="<circle>10.0,10.0 1</circle>"))
    assert nowhere.status_code == 422 and "grid" in nowhere.json()["detail"]
    bad_severity = post(server, cap("ZJK-S", severity="Apocalyptic"))
    assert bad_severity.status_code == 422


def test_cap_needs_an_xml_media_type_415(server: RunningServer) -> None:
    assert post(server, cap(), {"content-type": "application/json"}).status_code == 415
