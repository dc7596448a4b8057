"""The center view fold: given events, the expected view; nothing counted twice."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from projections.center_view import RECENT_LIMIT, apply, new_center, routes_to, step
from projections.envelope import Envelope, from_rows, from_stored
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
    view = apply(new_center("130706001"), reported(h, "a")).view
    assert view["counts"]["reported"] == 1
    assert view["queue"]["a"]["status"] == "reported"
    assert view["queue"]["a"]["grid"] == "130706001001001"
    assert view["grids"] == {"130706001001001": 1}
    assert view["recent"][0]["type"] == "Reported"
    assert view["recent"][0]["actor"] == "u1"
    assert view["position"] == 1


def test_dispatch_moves_the_count_and_shows_assignee_and_due() -> None:
    h = History()
    center = new_center("130706")
    view = center.view
    for event in (
        reported(h, "a"),
        h.event("a", 2, "Accepted", note=""),
        h.event("a", 3, "Dispatched", assignee={"kind": "department", "id": "housing"},
                due="2026-11-28T10:00:00+00:00", note=""),
    ):
        apply(center, event)
    assert view["counts"]["reported"] == 0
    assert view["counts"]["accepted"] == 0
    assert view["counts"]["dispatched"] == 1
    item = view["queue"]["a"]
    assert item["assignee"] == "department:housing"
    assert item["due"] == "2026-11-28T10:00:00+00:00"
    assert item["version"] == 3
    assert [r["type"] for r in view["recent"]] == ["Dispatched", "Accepted", "Reported"]


def test_closing_removes_the_incident_from_the_queue_and_its_grid_count() -> None:
    h = History()
    center = new_center("130700")
    view = center.view
    apply(center, reported(h, "a"))
    apply(center, reported(h, "b"))
    apply(center, h.event("a", 2, "Rejected", reason="out of scope"))
    assert "a" not in view["queue"]
    assert view["grids"] == {"130706001001001": 1}
    assert view["counts"]["rejected"] == 1
    assert view["counts"]["reported"] == 1
    apply(center, h.event("b", 2, "MarkedDuplicate", of="a"))
    assert view["queue"] == {}
    assert len(center.cases) == 0
    assert view["grids"] == {}


def test_the_same_notification_applied_twice_counts_once() -> None:
    h = History()
    event = reported(h, "a")
    center = apply(new_center("130706001"), event)
    once = copy.deepcopy(center.view)
    apply(center, event)
    assert center.view == once
    assert step(center, event) == []


def test_progress_keeps_the_status_but_updates_the_time() -> None:
    h = History()
    center = new_center("130706001")
    view = center.view
    for event in (reported(h, "a"), h.event("a", 2, "Accepted", note=""),
                  h.event("a", 3, "Dispatched", assignee={"kind": "department", "id": "x"},
                          due="2026-11-28T10:00:00+00:00", note=""),
                  h.event("a", 4, "Acknowledged")):
        apply(center, event)
    last = h.event("a", 5, "ProgressReported", note="on site")
    apply(center, last)
    assert view["queue"]["a"]["status"] == "acknowledged"
    assert view["queue"]["a"]["updated_at"] == last.at
    assert view["recent"][0]["summary"] == "on site"


def test_the_recent_feed_is_bounded_and_newest_first() -> None:
    h = History()
    center = new_center("130706001")
    view = center.view
    for i in range(RECENT_LIMIT + 10):
        apply(center, reported(h, f"i{i}"))
    assert len(view["recent"]) == RECENT_LIMIT
    numbers = [r["n"] for r in view["recent"]]
    assert numbers == sorted(numbers, reverse=True)
    assert numbers[0] == RECENT_LIMIT + 10


def test_an_event_routes_to_its_township_district_and_city() -> None:
    h = History()
    assert routes_to(reported(h, "a")) == CENTERS


def test_changes_replayed_on_a_copy_give_the_same_view() -> None:
    h = History()
    center = new_center("130706001")
    mirror = copy.deepcopy(center.view)
    for event in (reported(h, "a"), h.event("a", 2, "Accepted", note=""),
                  h.event("a", 3, "Rejected", reason="no")):
        apply_changes(mirror, step(center, event))
    assert mirror == center.view


def test_an_event_of_another_aggregate_changes_nothing() -> None:
    center = new_center("130706001")
    event = Envelope(1, "x", 1, "Unknown.Thing", "2026-11-27T10:00:00+00:00", {"centers": CENTERS})
    assert step(center, event) == []


def test_envelopes_decode_stored_state_to_plain_json() -> None:
    state = (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-27T10:00:00+00:00"},'
             b'"originator_topic":"domain.incident:Incident","grid":"g","centers":["t"]}')
    envelope = from_stored(7, "id-1", 1, "domain.incident:Incident.Reported", state)
    assert envelope.type == "Incident.Reported"
    assert envelope.at == "2026-11-27T10:00:00+00:00"
    assert envelope.data == {"grid": "g", "centers": ["t"]}
    assert envelope.notification_id == 7


def test_envelopes_decoded_a_batch_at_a_time_equal_those_decoded_one_by_one() -> None:
    stamp = b'"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-27T10:00:00+00:00"}'
    rows: list[tuple[int, object, int, str, bytes]] = [
        (7, "id-1", 1, "domain.incident:Incident.Reported",
         b'{' + stamp + b',"originator_topic":"domain.incident:Incident","centers":["t"]}'),
        (8, uuid.UUID(int=8), 2, "domain.incident:Incident.Accepted",  # a UUID, not its text
         b'{' + stamp + b',"at":{"_type_":"datetime_iso","_data_":"2026-11-27T11:00:00+00:00"}}'),
        (9, "id-3", 1, "other:Thing.Happened", b'{"n":1}'),  # no timestamp
        (10, "id-4", 1, "other:Thing.Happened", b'{"timestamp":"2026-11-27T12:00:00Z"}'),
    ]
    assert from_rows(rows) == [from_stored(*row) for row in rows]
    assert from_rows(rows)[1].data == {"at": "2026-11-27T11:00:00+00:00"}
    with pytest.raises(ValueError, match="must be a JSON object; got list"):
        from_rows([(11, "id-5", 1, "other:Thing.Happened", b"[]")])
