"""`allowed_actions` of an incident, per role x status, against what the server does.

For every role and every status an incident can be in, the incident's `allowed_actions` (as that
user reads it) are compared with the server's actual answer to every loop action from that user: a
listed action succeeds (2xx), an unlisted one is refused (403, 404 or 409). Nothing here restates
the rules: the actions come from the one table (domain/actions.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain.actions import PATHS
from tests.conftest import RunningServer, start_server

pytestmark = pytest.mark.e2e

CITY, DISTRICT, TOWNSHIP, OTHER = "130700", "130706", "130706001", "130706002"
GRID = "130706001001001"
DUE = "2030-01-01T00:00:00+00:00"

# status -> the actions (as the city officer) that bring a new case there, in order
PATHS_TO: dict[str, tuple[str, ...]] = {
    "reported": (),
    "accepted": ("accept",),
    "rejected": ("reject",),
    "duplicate": ("mark-duplicate",),
    "dispatched": ("accept", "dispatch"),
    "returned": ("accept", "dispatch", "return"),
    "acknowledged": ("accept", "dispatch", "acknowledge"),
    "resolved": ("accept", "dispatch", "acknowledge", "resolve"),
    "visited": ("accept", "dispatch", "acknowledge", "resolve", "return-visit"),
    # A rating of 1-2 sends the case back to its assignee at once (#14): it is dispatched again.
    "reopened automatically": ("accept", "dispatch", "acknowledge", "resolve", "return-visit:2"),
    "reopened": ("accept", "dispatch", "acknowledge", "resolve", "return-visit", "reopen"),
    "closed": ("accept", "dispatch", "acknowledge", "resolve", "return-visit", "close"),
}


class User:
    def __init__(self, server: RunningServer, name: str, role: str, center: str | None,
                 assignee: dict[str, str], **claims: str) -> None:
        embedded: Any = server.embedded
        self.token = embedded.tokens.issue(name, role, center, **claims)
        self.home = center or ""
        self.assignee = assignee  # the cases of this user's rows are dispatched to

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


HOUSING = {"kind": "department", "id": "housing"}
ROLES: dict[str, Callable[[RunningServer], User]] = {
    "city officer": lambda s: User(s, "c", "city_officer", CITY, HOUSING),
    "district officer": lambda s: User(s, "d", "district_officer", DISTRICT, HOUSING),
    "township officer": lambda s: User(s, "t", "township_officer", TOWNSHIP, HOUSING),
    "other township's officer": lambda s: User(s, "o", "township_officer", OTHER, HOUSING),
    "assigned department": lambda s: User(s, "h", "department", None, HOUSING,
                                          department="housing"),
    "another department": lambda s: User(s, "w", "department", None, HOUSING,
                                         department="water_affairs"),
    "assigned grid worker": lambda s: User(s, "gw-130706001001001", "grid_worker", GRID,
                                           {"kind": "grid_worker", "id": "gw-130706001001001"}),
    "auditor": lambda s: User(s, "a", "auditor", None, HOUSING),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("allowed") / "data")
    yield running
    running.stop()


def body(action: str, user: User, other: str) -> dict[str, Any]:
    name, _, rating = action.partition(":")
    return {
        "reject": {"reason": "out of scope"},
        "mark-duplicate": {"of": other},
        "dispatch": {"assignee": user.assignee, "due": DUE, "due_reason": "long-term works"},
        "return": {"reason": "not ours"},
        "transfer": {"assignee": {"kind": "department", "id": "urban_management"}},
        "progress": {"note": "on site"},
        "resolve": {"outcome": "fixed"},
        "return-visit": {"satisfaction": int(rating or 5), "comment": ""},
        "visit-attempt": {"at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
                          "note": "no answer"},
        "reopen": {"reason": "resident dissatisfied"},
        "supervise": {"note": "hurry up", "by_center": user.home or CITY},
        "escalate": {"reason": "taking too long"},
    }.get(name, {})


def case_in(client: httpx.Client, status: str, user: User, other: str) -> str:
    made = client.post("/api/incidents", json={"source": "hotline", "category": "water_leak",
                                               "grid": GRID, "description": "matrix"})
    assert made.status_code == 201, made.text
    case = made.json()["id"]
    for step in PATHS_TO[status]:
        done = client.post(f"/api/incidents/{case}/{step.partition(':')[0]}",
                           json=body(step, user, other))
        assert done.status_code == 200, (status, step, done.text)
    return case


def check_role(server: RunningServer, role: str, other: str) -> tuple[list[str], set[str]]:
    """The mismatches for one role over every status and action, and the actions it was given."""
    user = ROLES[role](server)
    mismatches: list[str] = []
    listed: set[str] = set()
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as officer, \
            httpx.Client(base_url=server.url, headers=user.headers, timeout=60) as client:
        for status in PATHS_TO:
            case = case_in(officer, status, user, other)
            read = client.get(f"/api/incidents/{case}")
            allowed = read.json()["allowed_actions"] if read.status_code == 200 else []
            listed.update(allowed)
            assert set(allowed) <= set(PATHS), allowed
            for action in PATHS:
                # A listed action changes the case: try it on a fresh one in that status.
                target = case_in(officer, status, user, other) if action in allowed else case
                answer = client.post(f"/api/incidents/{target}/{action}",
                                     json=body(action, user, other))
                accepted = answer.status_code == 200
                if accepted != (action in allowed):
                    mismatches.append(
                        f"{role}, {status}: {action} is "
                        f"{'listed' if action in allowed else 'not listed'} but the "
                        f"server answered {answer.status_code} {answer.text[:120]}")
                elif not accepted and answer.status_code not in (403, 404, 409):
                    mismatches.append(f"{role}, {status}: {action} refused with "
                                      f"{answer.status_code}")
    return mismatches, listed


def test_allowed_actions_are_exactly_what_the_server_accepts_per_role_and_status(
        server: RunningServer) -> None:
    other = httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
        "source": "hotline", "category": "noise", "grid": GRID,
        "description": "the original"}).json()["id"]
    # The roles are independent (each acts on cases of its own): check them side by side.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda role: check_role(server, role, other), ROLES))
    mismatches = [m for found, _ in results for m in found]
    listed_somewhere = set().union(*(listed for _, listed in results))
    assert mismatches == []
    assert listed_somewhere == set(PATHS)  # every action is reachable by someone


def test_the_answer_to_an_action_lists_the_actors_next_actions(server: RunningServer) -> None:
    department = ROLES["assigned department"](server)
    with httpx.Client(base_url=server.url, headers=server.headers) as officer:
        case = case_in(officer, "dispatched", department, "")
        seen_by_officer = officer.get(f"/api/incidents/{case}").json()["allowed_actions"]
        assert set(seen_by_officer) == {"acknowledge", "return", "transfer", "supervise",
                                        "escalate"}
        done = httpx.post(f"{server.url}/api/incidents/{case}/acknowledge",
                          headers=department.headers, json={})
        assert done.status_code == 200
        # The department may progress, resolve and return; it may not transfer nor supervise.
        assert set(done.json()["allowed_actions"]) == {"progress", "resolve", "return"}
