"""The records between the worker's agents: one per center per batch, events in log order."""

from __future__ import annotations

import orjson
from eventsourcing.persistence import Notification

from infra.distributed.relay import encode
from streams.routing import copies, route, stored_envelope


def _stored(n: int, incident: str, centers: list[str]) -> bytes:
    state = {"centers": centers, "grid": "g1", "actor": {"user": "u"}, "description": "d",
             "timestamp": {"_type_": "datetime_iso", "_data_": f"2026-01-01T00:00:{n:02d}"}}
    return encode(Notification(id=n, originator_id=incident, originator_version=1,
                               topic="domain.incident:Incident.Reported",
                               state=orjson.dumps(state)))[1]


def test_a_batch_becomes_one_record_per_center_with_its_events_in_log_order() -> None:
    batch = [(0, _stored(1, "a", ["t1", "d1", "city"])), (0, _stored(2, "b", ["t2", "d1", "city"])),
             (0, _stored(3, "c", ["t1", "d1", "city", "elsewhere"]))]
    records = route(batch, frozenset({"t1", "t2", "d1", "city"}))
    assert sorted(c for c, _ in records) == ["city", "d1", "t1", "t2"]  # none for "elsewhere"
    decoded = {center: copies(value) for center, value in records}
    assert {c: [(p, e.notification_id) for p, e in events] for c, (_, events) in
            decoded.items()} == {"t1": [(0, 1), (0, 3)], "t2": [(0, 2)],
                                 "d1": [(0, 1), (0, 2), (0, 3)], "city": [(0, 1), (0, 2), (0, 3)]}
    assert all(center == name for name, (center, _) in decoded.items())
    # each copy is the envelope the embedded runner would fold
    assert decoded["city"][1][2][1] == stored_envelope(batch[2][1])


def test_a_batch_routing_nowhere_sends_nothing() -> None:
    assert route([(0, _stored(1, "a", ["t9"]))], frozenset({"t1"})) == []


def test_a_center_with_more_than_a_record_holds_gets_several_in_order() -> None:
    batch = [(0, _stored(n, f"i{n}", ["t1"])) for n in range(1, 8)]
    one = len(route(batch[:1], frozenset({"t1"}))[0][1])
    records = route(batch, frozenset({"t1"}), limit=3 * one)
    assert len(records) > 1 and all(len(value) <= 4 * one for _, value in records)
    assert [e.notification_id for _, value in records for _, e in copies(value)[1]] == list(
        range(1, 8))
