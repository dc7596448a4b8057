"""The permission matrix over real HTTP and websockets: every role x (own center, parent,
child, sibling) x every command, query and subscription, decided as tests/access_spec.py
specifies; a denied action appends no incident event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from domain.jurisdiction import Jurisdiction
from tests.access_spec import HANDLER_ACTIONS, OTHER_ACTIONS, expected, group_of, small_tree
from tests.conftest import RunningServer, start_server

pytestmark = pytest.mark.e2e

# Actions in an order where the ones that take a case away from its assignee come last.
ACTIONS = ("accept", "reject", "mark-duplicate", "dispatch", "supervise", "escalate",
           "acknowledge", "progress", "resolve", "return-visit", "reopen", "close", "transfer",
           "return", "visit-attempt")
assert sorted(ACTIONS) == sorted((*HANDLER_ACTIONS, *OTHER_ACTIONS))
DUE = "2030-01-01T00:00:00+00:00"
WATER = {"kind": "department", "id": "water"}


def body(action: str, other: str, home: str = "") -> dict[str, Any]:
    return {
        "supervise": {"note": "hurry up", "by_center": home},
        "escalate": {"reason": "taking too long"},
        "reject": {"reason": "out of scope"},
        "mark-duplicate": {"of": other},
        "dispatch": {"assignee": WATER, "due": DUE, "due_reason": "long-term works"},
        "return": {"reason": "not ours"},
        "transfer": {"assignee": {"kind": "department", "id": "housing"}},
        "progress": {"note": "on site"},
        "resolve": {"outcome": "fixed"},
        "return-visit": {"satisfaction": 5},
        "visit-attempt": {"at": "2026-01-01T08:00:00+08:00", "note": "no answer"},
    }.get(action, {})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server over the small tree (two districts, three townships) from tests/access_spec.py."""
    tree = tmp_path / "tree.geojson"
    tree.write_bytes(json.dumps(small_tree()).encode())
    running = start_server(tmp_path / "data", jurisdiction=tree)
    yield running
    running.stop()


class Layout:
    """City C; district D1 with townships T1, T2; district D2 with township T3."""

    def __init__(self, tree: Jurisdiction) -> None:
        self.tree = tree
        self.city = tree.root.id
        districts = [u for u in tree.children(self.city) if u.level == "district"]
        self.d1 = next(d for d in districts if len(self.townships(d.id)) >= 2)
        self.d2 = next(d for d in districts if d.id != self.d1.id and self.townships(d.id))
        self.t1, self.t2 = self.townships(self.d1.id)[:2]
        self.t3 = self.townships(self.d2.id)[0]
        self.grid = {t: tree.grids_under(t)[0].id for t in (self.t1, self.t2, self.t3)}

    def townships(self, district: str) -> list[str]:
        return [u.id for u in self.tree.children(district) if u.level == "township"]

    def home(self, center: str) -> str:
        return self.tree.centers_for(center)[0]

    def relation(self, data_center: str, home: str) -> str:
        if data_center == home:
            return "own"
        if self.tree.is_within(data_center, home):
            return "child"
        if self.tree.is_within(home, data_center):
            return "parent"
        return "sibling"


def incident_events_after(server: RunningServer, position: int) -> list[str]:
    recorder = server.embedded.service.recorder  # type: ignore[attr-defined]
    return [n.topic for n in recorder.select_notifications(start=position + 1, limit=1000)
            if n.topic.startswith("domain.incident:")]


def position(server: RunningServer) -> int:
    return server.embedded.service.recorder.max_notification_id() or 0  # type: ignore[attr-defined,no-any-return]


def test_every_role_relation_and_operation_is_decided_as_specified(server: RunningServer) -> None:
    embedded: Any = server.embedded
    layout = Layout(embedded.jurisdiction)
    t1 = layout.t1
    _, feed_key = embedded.keys.issue("matrix-camera", t1)
    identities: dict[str, tuple[dict[str, str], str | None, str]] = {}

    def token(user: str, role: str, center: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {embedded.tokens.issue(user, role, center, **kw)}"}

    identities = {
        "city_officer": (token("c", "city_officer", layout.city), None, layout.city),
        "district_officer": (token("d", "district_officer", layout.d1.id), None, layout.d1.id),
        "township_officer": (token("t", "township_officer", t1), None, t1),
        "grid_worker": (token("gw", "grid_worker", layout.grid[t1]), None, t1),
        "department": (token("h", "department", layout.d1.id, department="water"), None,
                       layout.d1.id),
        "auditor": (token("a", "auditor", layout.d1.id), None, layout.d1.id),
        "admin": (token("root", "admin", layout.d1.id), None, layout.d1.id),
        "feed": ({"X-API-Key": feed_key}, None, t1),
    }
    client = httpx.Client(base_url=server.url, timeout=10)
    # Dispatch goes only to registered parties (the grid registry): register the two this uses.
    for party in ("water", "housing"):
        registered = client.post("/api/registry/parties", headers=identities["admin"][0], json={
            "id": party, "kind": "department", "name": {"zh": party, "en": party},
            "serves": [layout.city], "categories": ["noise"]})
        assert registered.status_code in (200, 201), registered.text
    mismatches: list[str] = []
    cells = 0

    def check(role: str, what: str, group: str, rel: str, status: int, before: int) -> None:
        nonlocal cells
        cells += 1
        want = expected(role, group, rel, assigned=(role == "department"))
        # A read refused is a 404, as for a missing id: a 403 would confirm the case exists.
        refusals = (404,) if group == "read" else (403,)
        got = status not in refusals
        if status == 401 or status >= 500 or (group == "read" and status == 403):
            mismatches.append(f"{role} {what} ({rel}): unexpected {status}")
        elif want != got:
            mismatches.append(f"{role} {what} ({rel}): expected {'allow' if want else 'deny'}, "
                              f"got {status}")
        if not got and incident_events_after(server, before):
            mismatches.append(f"{role} {what} ({rel}): denied but appended an incident event")

    now = datetime.now(UTC).isoformat()
    for role, (headers, _, home) in identities.items():
        before = position(server)
        r = client.get("/api/centers", headers=headers)
        check(role, "the jurisdiction tree", "tree", "own", r.status_code, before)
        # Fresh cases for each role, each dispatched to department "water".
        cases: dict[str, str] = {}
        for township in (layout.t1, layout.t2, layout.t3):
            made = client.post("/api/incidents", headers=server.headers, json={
                "source": "hotline", "category": "noise", "grid": layout.grid[township],
                "description": f"matrix case for {role}"})
            assert made.status_code == 201, made.text
            case = made.json()["id"]
            for action in ("accept", "dispatch"):
                done = client.post(f"/api/incidents/{case}/{action}", headers=server.headers,
                                   json=body(action, case))
                assert done.status_code == 200, done.text
            cases[township] = case

        for township, case in cases.items():
            rel = layout.relation(township, home)
            other = cases[layout.t1] if case != cases[layout.t1] else cases[layout.t2]
            before = position(server)
            r = client.get(f"/api/incidents/{case}", headers=headers)
            check(role, "read incident", "read", rel, r.status_code, before)
            before = position(server)
            r = client.get(f"/api/audit/incidents/{case}/history", headers=headers)
            check(role, "incident history", "audit", rel, r.status_code, before)
            for action in ACTIONS:
                before = position(server)
                r = client.post(f"/api/incidents/{case}/{action}", headers=headers,
                                json=body(action, other, home))
                check(role, action, group_of(action), rel, r.status_code, before)
            before = position(server)
            r = client.post("/api/incidents", headers=headers, json={
                "source": "grid_worker", "category": "noise", "grid": layout.grid[township],
                "description": "reported by the matrix"})
            check(role, "report", "report", rel, r.status_code, before)

        for center in (layout.city, layout.d1.id, layout.d2.id, layout.t1, layout.t2, layout.t3):
            rel = layout.relation(center, home)
            before = position(server)
            r = client.get(f"/api/centers/{center}/view", headers=headers)
            check(role, f"view {center}", "view", rel, r.status_code, before)
            before = position(server)
            r = client.get(f"/api/audit/centers/{center}/view", params={"at": now},
                           headers=headers)
            check(role, f"view {center} at a past time", "audit", rel, r.status_code, before)
            before = position(server)
            r = client.get(f"/api/audit/centers/{center}/events", headers=headers)
            check(role, f"event times of {center}", "audit", rel, r.status_code, before)
            before = position(server)
            url = f"{server.ws_url}/ws/console?center={center}"
            try:
                with connect(url, additional_headers=headers, open_timeout=5) as ws:
                    ws.send('{"type": "hello"}')  # the snapshot comes at once
                    assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
                status = 101
            except InvalidStatus as exc:
                status = exc.response.status_code
            check(role, f"subscribe {center}", "subscribe", rel, status, before)
    client.close()
    assert not mismatches, "\n".join(mismatches)
    assert cells == 8 * (1 + 3 * (3 + len(ACTIONS)) + 6 * 4)


def test_an_officer_cannot_order_supervision_in_another_centers_name(
    server: RunningServer,
) -> None:
    embedded: Any = server.embedded
    made = httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
        "source": "hotline", "category": "noise", "grid": "G1", "description": "loud"})
    case = made.json()["id"]
    assert httpx.post(f"{server.url}/api/incidents/{case}/accept", headers=server.headers,
                      json={}).status_code == 200
    township = {"Authorization": "Bearer "
                + embedded.tokens.issue("t", "township_officer", "T1")}
    before = position(server)
    spoofed = httpx.post(f"{server.url}/api/incidents/{case}/supervise", headers=township,
                         json={"note": "hurry", "by_center": "C"})
    assert spoofed.status_code == 403 and "center.act_as" in spoofed.json()["detail"]
    assert incident_events_after(server, before) == []
    unknown = httpx.post(f"{server.url}/api/incidents/{case}/supervise", headers=township,
                         json={"note": "hurry", "by_center": "G1"})
    assert unknown.status_code == 422
    own = httpx.post(f"{server.url}/api/incidents/{case}/supervise", headers=township,
                     json={"note": "hurry", "by_center": "T1"})
    assert own.status_code == 200 and own.json()["supervised_by"] == "T1"
