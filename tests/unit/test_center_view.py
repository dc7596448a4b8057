"""The center view fold: given events, the expected view; nothing counted twice."""

from __future__ import annotations

import copy
from typing import Any

from projections.center_view import RECENT_LIMIT, apply, changes_for, new_view, routes_to, step
from projections.envelope import Envelope, from_stored
from projections.patch import apply_changes

CENTERS = ["130706001", "130706", "130700"]
ACTOR = {"user": "u1", "role": "township_officer", "center": "130706001"}


class History:
    """Builds envelopes as the store would number them."""

    def __init__(self) -> None:
        self.n = 0

    def event(self, incident: str, version: int, name: str, **data: Any) -> Envelope:
        self.n += 1
        return Envelope(
            notification_id=self.n,
            originator_id=incident,
            originator_version=version,
            type=f"Incident.{name}",
            at=f"2026-11-27T10:00:{self.n:02d}+00:00",
            data={"actor": ACTOR, "centers": CENTERS, **data},
        )


def reported(h: History, incident: str, grid: str = "130706001001001") -> Envelope:
    return h.event(incident, 1, "Reported", source="hotline", category="noise",
                   severity="routine", grid=grid, description="loud music after midnight")


def test_a_report_opens_an_incident_in_the_view_and_counts_it() -> None:
    h = History()
    view = apply(new_view("130706001"), reported(h, "a"))
    assert view["counts"]["reported"] == 1
    assert view["open"]["a"]["status"] == "reported"
    assert view["open"]["a"]["grid"] == "130706001001001"
    assert view["grids"] == {"130706001001001": 1}
    assert view["recent"][0]["type"] == "Reported"
    assert view["recent"][0]["actor"] == "u1"
    assert view["position"] == 1


def test_dispatch_moves_the_count_and_shows_assignee_and_due() -> None:
    h = History()
    view = new_view("130706")
    for event in (
        reported(h, "a"),
        h.event("a", 2, "Accepted", note=""),
        h.event("a", 3, "Dispatched", assignee={"kind": "department", "id": "housing"},
                due="2026-11-28T10:00:00+00:00", note=""),
    ):
        apply(view, event)
    assert view["counts"]["reported"] == 0
    assert view["counts"]["accepted"] == 0
    assert view["counts"]["dispatched"] == 1
    item = view["open"]["a"]
    assert item["assignee"] == "department:housing"
    assert item["due"] == "2026-11-28T10:00:00+00:00"
    assert item["version"] == 3
    assert [r["type"] for r in view["recent"]] == ["Dispatched", "Accepted", "Reported"]


def test_closing_removes_the_incident_from_open_and_its_grid_count() -> None:
    h = History()
    view = new_view("130700")
    apply(view, reported(h, "a"))
    apply(view, reported(h, "b"))
    apply(view, h.event("a", 2, "Rejected", reason="out of scope"))
    assert "a" not in view["open"]
    assert view["grids"] == {"130706001001001": 1}
    assert view["counts"]["rejected"] == 1
    assert view["counts"]["reported"] == 1
    apply(view, h.event("b", 2, "MarkedDuplicate", of="a"))
    assert view["open"] == {}
    assert view["grids"] == {}


def test_the_same_notification_applied_twice_counts_once() -> None:
    h = History()
    event = reported(h, "a")
    view = apply(new_view("130706001"), event)
    once = copy.deepcopy(view)
    apply(view, event)
    assert view == once
    assert step(view, event) == []


def test_progress_keeps_the_status_but_updates_the_time() -> None:
    h = History()
    view = new_view("130706001")
    for event in (reported(h, "a"), h.event("a", 2, "Accepted", note=""),
                  h.event("a", 3, "Dispatched", assignee={"kind": "department", "id": "x"},
                          due="2026-11-28T10:00:00+00:00", note=""),
                  h.event("a", 4, "Acknowledged")):
        apply(view, event)
    last = h.event("a", 5, "ProgressReported", note="on site")
    apply(view, last)
    assert view["open"]["a"]["status"] == "acknowledged"
    assert view["open"]["a"]["updated_at"] == last.at
    assert view["recent"][0]["summary"] == "on site"


def test_the_recent_feed_is_bounded_and_newest_first() -> None:
    h = History()
    view = new_view("130706001")
    for i in range(RECENT_LIMIT + 10):
        apply(view, reported(h, f"i{i}"))
    assert len(view["recent"]) == RECENT_LIMIT
    numbers = [r["n"] for r in view["recent"]]
    assert numbers == sorted(numbers, reverse=True)
    assert numbers[0] == RECENT_LIMIT + 10


def test_an_event_routes_to_its_township_district_and_city() -> None:
    h = History()
    assert routes_to(reported(h, "a")) == CENTERS


def test_changes_replayed_on_a_copy_give_the_same_view() -> None:
    h = History()
    view = new_view("130706001")
    mirror = copy.deepcopy(view)
    for event in (reported(h, "a"), h.event("a", 2, "Accepted", note=""),
                  h.event("a", 3, "Rejected", reason="no")):
        changes = changes_for(view, event)
        apply_changes(view, changes)
        apply_changes(mirror, changes)
    assert mirror == view


def test_an_event_of_another_aggregate_changes_nothing() -> None:
    view = new_view("130706001")
    event = Envelope(1, "x", 1, "Unknown.Thing", "2026-11-27T10:00:00+00:00", {"centers": CENTERS})
    assert changes_for(view, event) == []


def test_envelopes_decode_stored_state_to_plain_json() -> None:
    state = (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-27T10:00:00+00:00"},'
             b'"originator_topic":"domain.incident:Incident","grid":"g","centers":["t"]}')
    envelope = from_stored(7, "id-1", 1, "domain.incident:Incident.Reported", state)
    assert envelope.type == "Incident.Reported"
    assert envelope.at == "2026-11-27T10:00:00+00:00"
    assert envelope.data == {"grid": "g", "centers": ["t"]}
    assert envelope.notification_id == 7
