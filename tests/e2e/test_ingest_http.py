"""POST /api/ingest/alerts end to end over real HTTP, and duty officers' alert actions."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import RunningServer, start_server
from tests.e2e.alerting import CENTERS, Console, alert, post_alerts, stored_events

pytestmark = pytest.mark.ingest_modes  # every test: inline, and through the writer process


def problem(response: httpx.Response, status: int) -> dict:  # type: ignore[type-arg]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


async def test_batch_reaches_every_console_and_counts_unacknowledged(server: RunningServer) -> None:
    consoles = [await Console.open(server, c) for c in CENTERS]
    response = post_alerts(server, [alert("h1"), alert("h2"), alert("h3", label="car")])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["created"]) == (3, 3)
    for console in consoles:
        view = await console.wait_for(lambda v: v["alert_counts"]["unacknowledged"] == 3)
        assert {a["label"] for a in view["alerts"].values()} == {"person", "car"}
        await console.close()
    rest = httpx.get(f"{server.url}/api/centers/{CENTERS[0]}/view", headers=server.headers).json()
    assert rest["alert_counts"]["raised"] == 3


def test_single_alert_object_is_accepted(server: RunningServer) -> None:
    response = post_alerts(server, alert("single", at="2027-01-15T08:00:00+08:00", start_time=None))
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 1


def test_retried_batch_changes_nothing(server: RunningServer) -> None:
    batch = [alert(f"r{i}") for i in range(20)]
    assert post_alerts(server, batch).json()["created"] == 20
    before = stored_events(server)
    again = post_alerts(server, batch).json()
    assert again["duplicate"] == 20 and again["created"] == 0
    assert stored_events(server) == before


def test_new_update_end_over_http_makes_one_alert(server: RunningServer) -> None:
    results = [
        post_alerts(server, alert("life", type=kind, score=score, **extra)).json()["results"][0]
        for kind, score, extra in [("new", 0.6, {}), ("update", 0.8, {}),
                                   ("end", 0.8, {"end_time": 1_800_000_020.0})]
    ]
    assert [r["status"] for r in results] == ["created", "updated", "ended"]
    assert len({r["alert"] for r in results}) == 1
    data = httpx.get(f"{server.url}/api/alerts/{results[0]['alert']}", headers=server.headers).json()
    assert [e["type"] for e in data["timeline"]] == ["Raised", "Updated", "Ended"]
    assert data["top_score"] == 0.8 and data["ended"] is True


def test_malformed_json_is_400(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/api/ingest/alerts", content=b'{"alerts": [',
                          headers={**server.feed_headers, "content-type": "application/json"})
    assert "malformed JSON" in problem(response, 400)["detail"]


def test_invalid_field_is_422_naming_it(server: RunningServer) -> None:
    response = post_alerts(server, [alert("ok"), alert("bad", score=1.5)])
    assert "alerts[1].score" in problem(response, 422)["detail"]


def test_alert_without_time_is_422(server: RunningServer) -> None:
    body = alert("notime")
    del body["start_time"]
    assert "start_time" in problem(post_alerts(server, body), 422)["detail"]


@pytest.mark.parametrize("field", ["start_time", "end_time", "frame_time"])
def test_a_time_past_year_9999_is_422_not_500_or_503(server: RunningServer, field: str) -> None:
    """A time no date can hold (1e20 s): refused as bad input, not a 500 (inline) nor a 503
    that tells the feed to send the same batch again forever (writer process)."""
    before = stored_events(server)
    response = post_alerts(server, [alert("fine"), alert("far", **{field: 1e20})])
    assert f"alerts[1].{field}" in problem(response, 422)["detail"]
    assert stored_events(server) == before
    late = alert("late", at="9999-12-31T23:59:59-12:00")
    del late["start_time"]
    assert "alert #1: at" in problem(post_alerts(server, [alert("fine"), late]), 422)["detail"]
    assert stored_events(server) == before


def test_unknown_camera_is_422_and_nothing_is_stored(server: RunningServer) -> None:
    before = stored_events(server)
    response = post_alerts(server, [alert("fine"), alert("ghost", camera="cam-nowhere")])
    detail = problem(response, 422)["detail"]
    assert "alert #1" in detail and "cam-nowhere" in detail
    assert stored_events(server) == before
    counts = httpx.get(f"{server.url}/api/ingest/stats", headers=server.headers).json()["counts"]
    assert counts["http.rejected"] == 1


def test_oversized_batch_is_413(server: RunningServer) -> None:
    response = post_alerts(server, [alert(f"big{i}") for i in range(1001)])
    assert "at most 1000" in problem(response, 413)["detail"]


def test_wrong_media_type_is_415(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/api/ingest/alerts", content=orjson.dumps(alert("x")),
                          headers={**server.feed_headers, "content-type": "text/plain"})
    problem(response, 415)


def test_rate_limit_per_feed_key_is_429_with_retry_after(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data", ingest_rate=1.0, ingest_burst=5.0)
    try:
        assert post_alerts(running, [alert(f"a{i}") for i in range(5)]).status_code == 200
        limited = post_alerts(running, [alert("a5")])
        problem(limited, 429)
        assert int(limited.headers["Retry-After"]) >= 1
        _key_id, other_key = running.embedded.keys.issue("another-feed")  # type: ignore[attr-defined]
        other = httpx.post(f"{running.url}/api/ingest/alerts", json=alert("b0"),
                           headers={"X-API-Key": other_key})
        assert other.status_code == 200, other.text  # the limit is per feed key
    finally:
        running.stop()


async def test_officer_acknowledges_dismisses_and_creates_incident(server: RunningServer) -> None:
    console = await Console.open(server, CENTERS[0])
    ids = [r["alert"] for r in post_alerts(server, [alert("o1"), alert("o2"), alert("o3")]).json()["results"]]
    await console.wait_for(lambda v: v["alert_counts"]["unacknowledged"] == 3)
    url = f"{server.url}/api/alerts"
    ack = httpx.post(f"{url}/{ids[0]}/acknowledge", json={}, headers=server.headers)
    assert ack.status_code == 200 and ack.json()["disposition"] == "acknowledged"
    problem(httpx.post(f"{url}/{ids[0]}/acknowledge", json={}, headers=server.headers), 409)
    problem(httpx.post(f"{url}/{ids[1]}/dismiss", json={}, headers=server.headers), 422)
    dismissed = httpx.post(f"{url}/{ids[1]}/dismiss", json={"reason": "误报：树影 / shadow"},
                           headers=server.headers)
    assert dismissed.json()["disposition"] == "dismissed"
    created = httpx.post(f"{url}/{ids[2]}/create-incident", json={"severity": "major"},
                         headers=server.headers).json()
    incident_id = created["incident"]
    view = await console.wait_for(lambda v: v["alert_counts"]["unacknowledged"] == 0
                                  and incident_id in v["queue"])
    assert view["queue"][incident_id]["severity"] == "major"
    assert view["alert_counts"]["acknowledged"] == 1 and view["alert_counts"]["dismissed"] == 1
    assert view["alerts"] == {}
    problem(httpx.post(f"{url}/not-a-uuid/acknowledge", json={}, headers=server.headers), 404)
    await console.close()


def test_empty_body_is_400(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/api/ingest/alerts", content=b"",
                          headers={**server.feed_headers, "content-type": "application/json"})
    problem(response, 400)


def test_stats_count_outcomes_and_refusals(server: RunningServer) -> None:
    post_alerts(server, [alert("s1"), alert("s1", type="update", score=0.9)])
    post_alerts(server, [alert("s2", score=7)])
    stats = httpx.get(f"{server.url}/api/ingest/stats", headers=server.headers).json()
    counts = stats["counts"]
    assert (counts["alerts.created"], counts["alerts.updated"], counts["http.422"]) == (1, 1, 1)


def test_a_feed_key_limited_to_a_township_cannot_report_outside_it(server: RunningServer) -> None:
    jurisdiction = server.embedded.jurisdiction  # type: ignore[attr-defined]
    other = next(u.id for u in jurisdiction.centers() if u.level == "township" and u.id != CENTERS[0])
    _key_id, key = server.embedded.keys.issue("gate-elsewhere", center=other)  # type: ignore[attr-defined]
    before = stored_events(server)
    response = httpx.post(f"{server.url}/api/ingest/alerts", json=alert("outside"),
                          headers={"X-API-Key": key})
    problem(response, 403)
    assert stored_events(server) == before
    mine = httpx.post(f"{server.url}/api/ingest/alerts", json=alert("inside"),
                      headers=server.feed_headers)
    assert mine.status_code == 200


def test_ingest_needs_a_feed_key(server: RunningServer) -> None:
    problem(httpx.post(f"{server.url}/api/ingest/alerts", json=alert("anon")), 401)
    officer = httpx.post(f"{server.url}/api/ingest/alerts", json=alert("officer"),
                         headers=server.headers)
    assert officer.status_code in (401, 403), officer.text


def test_linking_needs_an_open_incident_the_officer_may_see(server: RunningServer) -> None:
    embedded = server.embedded  # type: ignore[attr-defined]
    jurisdiction = embedded.jurisdiction
    town_officer = {"Authorization": "Bearer " + embedded.tokens.issue(
        "town-duty", "township_officer", CENTERS[0])}
    elsewhere = next(g.id for g in jurisdiction.grids() if not jurisdiction.is_within(g.id, CENTERS[0]))
    here = next(g.id for g in jurisdiction.grids_under(CENTERS[0]))

    def report(grid: str) -> str:
        response = httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
            "source": "hotline", "category": "noise", "grid": grid, "description": "link test"})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    alert_id = post_alerts(server, [alert("link-1")]).json()["results"][0]["alert"]
    url = f"{server.url}/api/alerts/{alert_id}/link"
    before = stored_events(server)
    # An incident outside the officer's township: refused, though the alert is theirs, as if it
    # did not exist (404, like a missing one: ids are not confirmed to whoever guesses them).
    problem(httpx.post(url, json={"incident": report(elsewhere)}, headers=town_officer), 404)
    # A rejected (final) incident: a linked alert would be forgotten there.
    rejected = report(here)
    reject = httpx.post(f"{server.url}/api/incidents/{rejected}/reject",
                        json={"reason": "not ours"}, headers=server.headers)
    assert reject.status_code == 200, reject.text
    after_setup = stored_events(server)
    assert after_setup == before + 3  # two reports and a rejection; no link event
    body = problem(httpx.post(url, json={"incident": rejected}, headers=town_officer), 409)
    assert "rejected" in body["detail"]
    problem(httpx.post(url, json={"incident": "not-an-id"}, headers=town_officer), 404)
    assert stored_events(server) == after_setup
    open_here = report(here)
    linked = httpx.post(url, json={"incident": open_here}, headers=town_officer)
    assert linked.status_code == 200, linked.text
    assert linked.json()["disposition"] == "linked" and linked.json()["incident"] == open_here
