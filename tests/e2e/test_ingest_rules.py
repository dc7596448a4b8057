"""A rule opens a major incident at once, on the township, district and city consoles."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.alerting import CENTERS, GRID, Console, alert, post_alerts

pytestmark = pytest.mark.ingest_modes  # every test: inline, and through the writer process


async def test_fire_in_a_zone_opens_a_major_incident_on_all_three_consoles(
    server: RunningServer,
) -> None:
    consoles = [await Console.open(server, center) for center in CENTERS]
    result = post_alerts(server, [alert("fire-1", label="fire", score=0.92, zones=["stairwell"])])
    assert result.status_code == 200, result.text
    outcome = result.json()["results"][0]
    assert outcome["rules"] == ["fire_or_smoke_in_zone"]
    incident_id = outcome["incident"]
    for console in consoles:
        view = await console.wait_for(lambda v: incident_id in v["queue"])
        item = view["queue"][incident_id]
        assert (item["severity"], item["grid"], item["category"]) == ("major", GRID, "fire_hazard")
        await console.close()
    incident = httpx.get(f"{server.url}/api/incidents/{incident_id}", headers=server.headers).json()
    assert incident["timeline"][0]["actor"]["user"] == "rule:fire_or_smoke_in_zone"
    audit = httpx.get(f"{server.url}/api/alerts/{outcome['alert']}", headers=server.headers).json()
    fired = [e for e in audit["timeline"] if e["type"] == "RuleFired"]
    assert len(fired) == 1 and fired[0]["data"]["incident"] == incident_id
    assert "stairwell" in fired[0]["data"]["reason"]


def test_low_score_fire_outside_zone_opens_nothing(server: RunningServer) -> None:
    outcomes = post_alerts(server, [alert("f2", label="fire", score=0.5, zones=["stairwell"]),
                                    alert("f3", label="fire", score=0.95, zones=["square"])]).json()
    assert all("incident" not in o for o in outcomes["results"])


async def test_watch_listed_plate_is_listed_with_critical_priority(server: RunningServer) -> None:
    console = await Console.open(server, CENTERS[0])
    out = post_alerts(server, [alert("p1", label="car", plate="冀G 12345")]).json()["results"][0]
    assert out["rules"] == ["watch_listed_plate"]
    view = await console.wait_for(lambda v: v["alerts"].get(out["alert"], {}).get("priority") == "critical")
    assert view["alerts"][out["alert"]]["rule"] == "watch_listed_plate"
    await console.close()
