"""Issue #14 over real HTTP: policy due times on every step, the resolve limit a dispatch may
shorten but not extend without a reason, and the return-visit rule for closing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.test_http_api import REPORT, act, assert_problem, report

HOUSING = {"kind": "department", "id": "housing"}


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        yield client


def resolved(client: httpx.Client, **overrides: Any) -> dict[str, Any]:
    incident = report(client, **overrides)
    i = incident["id"]
    for action, body in [("accept", {}), ("dispatch", {"assignee": HOUSING}),
                         ("acknowledge", {}), ("resolve", {"outcome": "fixed"})]:
        response = act(client, i, action, **body)
        assert response.status_code == 200, (action, response.text)
    return response.json()


def ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


def wait_until_listed(client: httpx.Client, incident: str) -> dict[str, Any]:
    """The incident's row in `GET /api/incidents`, every page read: the read model is kept by the
    projection runner (its own thread), so a row may follow its command by a moment; a liveness
    wait, nothing timed."""
    deadline = time.monotonic() + 30
    while True:
        params: dict[str, Any] = {"center": "130706001", "status": "reported", "limit": 200}
        while True:
            page = client.get("/api/incidents", params=params).json()
            found = [i for i in page["items"] if i["id"] == incident]
            if found:
                return found[0]
            if not page.get("next"):
                break
            params["cursor"] = page["next"]
        assert time.monotonic() < deadline, f"{incident} never listed"
        time.sleep(0.1)


def test_every_step_has_its_due_time_on_the_incident_and_in_the_view(
    client: httpx.Client,
) -> None:
    incident = report(client, category="pothole")
    assert incident["step"] == "accept" and incident["step_due"]
    reported = datetime.fromisoformat(incident["created_at"])
    # The shipped policy's default row: 30 minutes to accept.
    assert abs(datetime.fromisoformat(incident["step_due"]) - reported
               - timedelta(minutes=30)) < timedelta(seconds=5)
    listed = wait_until_listed(client, incident["id"])
    assert listed["step"] == "accept" and listed["step_due"] == incident["step_due"]
    accepted = act(client, incident["id"], "accept").json()
    assert accepted["step"] == "dispatch"
    dispatched = act(client, incident["id"], "dispatch", assignee=HOUSING).json()
    assert dispatched["step"] == "acknowledge"
    # No due given: the policy's resolve time (3 days for the default row).
    assert abs(datetime.fromisoformat(dispatched["due"]) - datetime.now(UTC)
               - timedelta(days=3)) < timedelta(seconds=30)


def test_a_dispatch_may_shorten_the_resolve_time_but_extends_it_only_with_a_reason(
    client: httpx.Client,
) -> None:
    i = report(client, category="pothole")["id"]
    act(client, i, "accept")
    late = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    assert_problem(act(client, i, "dispatch", assignee=HOUSING, due=late), 422,
                   "sla-resolve-limit", "due_reason")
    soon = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
    shorter = act(client, i, "dispatch", assignee=HOUSING, due=soon)
    assert shorter.status_code == 200 and shorter.json()["due_reason"] is None
    act(client, i, "return", reason="not ours")
    extended = act(client, i, "dispatch", assignee=HOUSING, due=late,
                   due_reason="materials on order")
    assert extended.status_code == 200, extended.text
    timeline = client.get(f"/api/incidents/{i}").json()["timeline"]
    assert timeline[-1]["data"]["due_reason"] == "materials on order"
    # A transfer is held to the same rule.
    water = {"kind": "department", "id": "water_affairs"}
    assert_problem(act(client, i, "transfer", assignee=water, due=late), 422, "sla-resolve-limit")
    moved = act(client, i, "transfer", assignee=water, due=late, due_reason="new contractor")
    assert moved.status_code == 200 and moved.json()["due_reason"] == "new contractor"


def test_closing_without_a_return_visit_is_refused_naming_the_rule(client: httpx.Client) -> None:
    i = resolved(client)["id"]
    assert_problem(act(client, i, "close"), 409, "return-visit-before-close", "0 recorded")


def test_unreachable_after_the_required_attempts_at_different_times_allows_closing(
    client: httpx.Client,
) -> None:
    i = resolved(client)["id"]
    # The shipped policy: 3 attempts, at least 2 h apart. Two calls a minute apart count once.
    for hours in (9, 8.99, 5):
        assert act(client, i, "visit-attempt", at=ago(hours), note="no answer").status_code == 200
    assert_problem(act(client, i, "close"), 409, "return-visit-before-close", "3 recorded")
    attempt = act(client, i, "visit-attempt", at=ago(1)).json()
    assert attempt["visit_attempts"] == 4 and "close" in attempt["allowed_actions"]
    closed = act(client, i, "close", note="resident unreachable")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert client.get(f"/api/incidents/{i}").json()["timeline"][-1]["data"]["unreachable"] is True


@pytest.mark.parametrize(("body", "status", "words"), [
    ({}, 422, ["at"]),
    ({"at": "yesterday"}, 422, ["at"]),
    ({"at": "2026-11-27T08:00:00"}, 422, ["timezone"]),
])
def test_a_bad_visit_attempt_is_refused(client: httpx.Client, body: dict[str, Any], status: int,
                                        words: list[str]) -> None:
    i = resolved(client)["id"]
    assert_problem(act(client, i, "visit-attempt", **body), status, *words)


def test_a_visit_attempt_in_the_future_is_refused(client: httpx.Client) -> None:
    i = resolved(client)["id"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert_problem(act(client, i, "visit-attempt", at=future), 422, "in the future")


def test_a_visit_attempt_before_resolution_is_an_illegal_transition(client: httpx.Client) -> None:
    i = report(client)["id"]
    assert_problem(act(client, i, "visit-attempt", at=ago(1)), 409, "visit-attempt")


def test_dissatisfied_reopens_to_the_same_assignee_then_satisfied_closes(
    client: httpx.Client,
) -> None:
    i = resolved(client, **REPORT)["id"]
    reopened = act(client, i, "return-visit", satisfaction=2, comment="still noisy").json()
    assert reopened["status"] == "dispatched" and reopened["assignee"] == HOUSING
    assert reopened["reopen_count"] == 1 and reopened["step"] == "acknowledge"
    timeline = client.get(f"/api/incidents/{i}").json()["timeline"]
    assert timeline[-1]["type"] == "ReopenedAutomatically"
    assert timeline[-1]["data"]["reason"] == "still noisy"
    for action, body, status in [("acknowledge", {}, "acknowledged"),
                                 ("resolve", {"outcome": "equipment removed"}, "resolved"),
                                 ("return-visit", {"satisfaction": 5}, "visited"),
                                 ("close", {}, "closed")]:
        response = act(client, i, action, **body)
        assert response.status_code == 200 and response.json()["status"] == status
