"""Issue #11 rows 5, 12 and 13 over real HTTP, each written from its reproduction: a grid worker's
token naming the city, the 403-or-404 existence oracle, and `mark-duplicate` of an incident the
officer cannot see."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from domain.camera_alert import alert_id
from tests.conftest import RunningServer
from tests.e2e.alerting import alert, post_alerts

pytestmark = pytest.mark.e2e

TOWN_A, GRID_A = "130706001", "130706001001001"
TOWN_B, GRID_B = "130706200", "130706200001001"
CAMERA_B = "cam-130706200001001-1"


def bearer(server: RunningServer, user: str, role: str, center: str | None) -> dict[str, str]:
    token = server.embedded.tokens.issue(user, role, center)  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


def report(server: RunningServer, grid: str) -> str:
    made = httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
        "source": "hotline", "category": "noise", "grid": grid, "description": "oracle test"})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def events(server: RunningServer) -> int:
    return int(server.embedded.service.recorder.max_notification_id() or 0)  # type: ignore[attr-defined]


def same_answer(theirs: httpx.Response, missing: httpx.Response, their_id: str,
                missing_id: str) -> dict[str, Any]:
    """Both 404 problems, alike but for the id each names."""
    for response in (theirs, missing):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
    a, b = theirs.json(), missing.json()
    assert a["detail"].replace(their_id, "ID") == b["detail"].replace(missing_id, "ID")
    assert a["title"] == b["title"]
    assert set(theirs.headers) - {"date"} == set(missing.headers) - {"date"}
    return dict(a)


# -- row 5 ----------------------------------------------------------------------------------


def test_a_grid_worker_token_naming_the_city_is_refused(server: RunningServer) -> None:
    theirs = report(server, GRID_B)
    secret = server.embedded.tokens.secret  # type: ignore[attr-defined]
    # Signed with the server's own key, as `linkage token issue` used to sign it.
    token = jwt.encode({"sub": "gw", "role": "grid_worker", "center": "130700", "aud": "linkage",
                        "iss": "linkage-local", "exp": int(time.time()) + 60}, secret, "HS256")
    headers = {"Authorization": f"Bearer {token}"}
    read = httpx.get(f"{server.url}/api/incidents/{theirs}", headers=headers)
    assert read.status_code == 401, read.text
    assert read.headers["content-type"] == "application/problem+json"
    assert "grid_worker's home center must be a grid or township; 130700 is a city" in (
        read.json()["detail"])
    before = events(server)
    elsewhere = httpx.post(f"{server.url}/api/incidents", headers=headers, json={
        "source": "grid_worker", "category": "noise", "grid": GRID_B, "description": "x"})
    assert elsewhere.status_code == 401 and events(server) == before
    with pytest.raises(ValueError, match="130700 is a city"):
        server.embedded.tokens.issue("gw", "grid_worker", "130700")  # type: ignore[attr-defined]


# -- row 12 ---------------------------------------------------------------------------------


def test_an_incident_of_another_township_reads_as_missing(server: RunningServer) -> None:
    theirs, missing = report(server, GRID_B), str(uuid.uuid4())
    for headers in (bearer(server, "ta", "township_officer", TOWN_A),
                    bearer(server, "gw", "grid_worker", GRID_A)):
        same_answer(httpx.get(f"{server.url}/api/incidents/{theirs}", headers=headers),
                    httpx.get(f"{server.url}/api/incidents/{missing}", headers=headers),
                    theirs, missing)
    # The officer of B reads it.
    mine = httpx.get(f"{server.url}/api/incidents/{theirs}",
                     headers=bearer(server, "tb", "township_officer", TOWN_B))
    assert mine.status_code == 200


def test_a_guessable_alert_id_of_another_township_reads_as_missing(server: RunningServer) -> None:
    posted = post_alerts(server, [alert("oracle-b", camera=CAMERA_B)])
    theirs = posted.json()["results"][0]["alert"]
    # Alert ids are uuid5 of the feed and its event id: anyone can compute them.
    assert theirs == str(alert_id("feed:test-feed", "oracle-b"))
    missing = str(alert_id("feed:test-feed", "never-sent"))
    officer_a = bearer(server, "ta", "township_officer", TOWN_A)
    same_answer(httpx.get(f"{server.url}/api/alerts/{theirs}", headers=officer_a),
                httpx.get(f"{server.url}/api/alerts/{missing}", headers=officer_a),
                theirs, missing)
    officer_b = bearer(server, "tb", "township_officer", TOWN_B)
    assert httpx.get(f"{server.url}/api/alerts/{theirs}", headers=officer_b).status_code == 200


def test_the_audit_history_refuses_an_officer_before_looking_the_id_up(
    server: RunningServer,
) -> None:
    theirs, missing = report(server, GRID_B), str(uuid.uuid4())
    officer_a = bearer(server, "ta", "township_officer", TOWN_A)
    answers = [httpx.get(f"{server.url}/api/audit/incidents/{ref}/history", headers=officer_a)
               for ref in (theirs, missing)]
    assert [a.status_code for a in answers] == [403, 403]
    assert answers[0].json()["detail"] == answers[1].json()["detail"]


# -- row 13 ---------------------------------------------------------------------------------


def test_mark_duplicate_of_an_incident_the_officer_cannot_see_is_refused(
    server: RunningServer,
) -> None:
    mine, theirs, missing = report(server, GRID_A), report(server, GRID_B), str(uuid.uuid4())
    officer_a = bearer(server, "ta", "township_officer", TOWN_A)
    url = f"{server.url}/api/incidents/{mine}/mark-duplicate"
    before = events(server)
    refused = same_answer(httpx.post(url, json={"of": theirs}, headers=officer_a),
                          httpx.post(url, json={"of": missing}, headers=officer_a),
                          theirs, missing)
    assert theirs in refused["detail"]
    assert events(server) == before
    # Linking an alert answers the same way (the same rule, the same 404).
    alert_ref = post_alerts(server, [alert("dup-link")]).json()["results"][0]["alert"]
    link = f"{server.url}/api/alerts/{alert_ref}/link"
    before = events(server)
    same_answer(httpx.post(link, json={"incident": theirs}, headers=officer_a),
                httpx.post(link, json={"incident": missing}, headers=officer_a),
                theirs, missing)
    assert events(server) == before
    # Its own township's incident it may name.
    original = report(server, GRID_A)
    done = httpx.post(url, json={"of": original}, headers=officer_a)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "duplicate"
