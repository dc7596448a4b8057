"""The worker's fold: redelivered events change nothing; partition interleaving does not matter."""

from __future__ import annotations

import orjson

from projections.center_view import apply, new_center
from projections.envelope import Envelope
from streams.folding import fold, new_state


def _event(n: int, incident: str, name: str, version: int) -> Envelope:
    data = {"centers": ["city"], "grid": "g1", "actor": {"user": "u"}, "description": "d"}
    return Envelope(n, incident, version, f"Incident.{name}", f"2026-01-01T00:00:{n:02d}", data)


HISTORY = [  # (partition, event): incident a on partition 0, b on partition 1
    (0, _event(1, "a", "Reported", 1)),
    (1, _event(2, "b", "Reported", 1)),
    (0, _event(3, "a", "Accepted", 2)),
    (1, _event(4, "b", "Rejected", 2)),
    (0, _event(5, "a", "Dispatched", 3)),
]


def test_a_redelivered_event_changes_nothing() -> None:
    state = new_state("city", "e1")
    assert fold(state, 0, HISTORY[0][1])
    before = orjson.dumps(state.view)
    assert fold(state, 0, HISTORY[0][1]) is None
    assert orjson.dumps(state.view) == before and state.seq == 1


def test_interleaved_partitions_give_the_embedded_view_and_seq() -> None:
    embedded = new_center("city")
    for _, event in HISTORY:
        apply(embedded, event)
    # partition 1 first, then partition 0, then everything redelivered
    order = [h for h in HISTORY if h[0] == 1] + [h for h in HISTORY if h[0] == 0]
    state = new_state("city", "e1")
    for partition, event in order + HISTORY:
        fold(state, partition, event)
    assert orjson.dumps(state.view, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        embedded.view, option=orjson.OPT_SORT_KEYS)
    assert state.seq == len(HISTORY)
    assert state.applied == {"0": 5, "1": 4}
