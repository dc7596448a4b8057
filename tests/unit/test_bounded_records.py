"""Views, frames and stored records stay bounded whatever the number of open cases; the worker's
table, written as several records per batch, comes back whole after a crash mid-batch."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from command_center.protocol import snapshot_frame
from projections.center_view import Center, new_center, step
from projections.envelope import Envelope
from projections.records import touched, view_records
from streams.center_table import batch_writes, load
from streams.folding import CenterState, fold_each, new_state

KIB = 1024
CENTERS = ["130706001", "130706", "130700"]
# Worst-case-like text: 80 CJK characters (the summary limit) in every record that shows one.
DESCRIPTION = "夜间施工噪音扰民居民多次投诉要求尽快处理" * 4


def history(open_cases: int) -> list[Envelope]:
    """Reports over 200 grids, every tenth dispatched with a due time, every 20th major."""
    events: list[Envelope] = []

    def event(incident: str, version: int, name: str, **data: Any) -> None:
        n = len(events) + 1
        events.append(Envelope(n, incident, version, f"Incident.{name}",
                               f"2026-11-27T10:00:00.{n:06d}+00:00",
                               {"actor": {"user": "hotline-operator-0042"}, "centers": CENTERS,
                                **data}))

    for i in range(open_cases):
        incident = f"{i:08d}-0000-4000-8000-000000000000"
        event(incident, 1, "Reported", source="hotline", category="road_damage",
              severity="major" if i % 20 == 0 else "routine", grid=f"130706001001{i % 200:03d}",
              description=DESCRIPTION)
        if i % 10 == 0:
            event(incident, 2, "Accepted", note=DESCRIPTION)
            event(incident, 3, "Dispatched", note=DESCRIPTION,
                  assignee={"kind": "department", "id": "urban_management"},
                  due=f"2026-12-{1 + i % 28:02d}T12:00:00+08:00")
    return events


def folded(open_cases: int) -> Center:
    center = new_center("130700")
    for event in history(open_cases):
        step(center, event)
    return center


def largest(values: Any) -> int:
    return max(len(orjson.dumps(v)) for v in values)


def table_writes(center: Center) -> list[Any]:
    """What the worker's table would hold for this center: every record written at once."""
    state = CenterState(center, epoch="e")
    names = set(view_records(center.view))
    return [v for _, _, v in batch_writes(state, 0, 1, names, {c["id"] for c in center.cases},
                                          lambda key: None)]


def test_no_record_grows_with_the_number_of_open_cases() -> None:
    few, many = folded(1_000), folded(5_000)
    assert len(many.cases) == 5_000 and len(many.view["queue"]) == many.queue_size
    for center in (few, many):
        assert largest(view_records(center.view).values()) <= 64 * KIB  # Redis keys
        assert largest(table_writes(center)) <= 64 * KIB  # faust changelog records
    assert largest(view_records(many.view).values()) == largest(view_records(few.view).values())
    assert largest(table_writes(many)) == largest(table_writes(few))
    # five times the open cases, about the same snapshot (the queue holds other cases)
    small = len(snapshot_frame("130700", "e", 1, few.view).encode())
    assert small < len(snapshot_frame("130700", "e", 1, many.view).encode()) < small * 1.1


@pytest.mark.slow
def test_a_city_with_100000_open_incidents_has_a_snapshot_under_256_kib() -> None:
    city = folded(100_000)
    assert len(city.cases) == 100_000
    frame = snapshot_frame("130700", "e", 1, city.view)
    assert len(frame.encode()) < 256 * KIB
    assert largest(table_writes(city)) <= 64 * KIB


def _store(table: dict[str, Any], writes: list[tuple[int, str, Any]]) -> None:
    for _, key, value in writes:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = orjson.loads(orjson.dumps(value))  # as the changelog carries it


def _write_batch(table: dict[str, Any], state: CenterState, events: list[Envelope],
                 keep: int | None = None) -> None:
    """Fold a batch and store it; `keep` writes only that many of its records (a crash)."""
    deltas = fold_each(state, [(0, e) for e in events])
    state.batch += 1
    writes = batch_writes(state, 0, state.batch, touched(c for _, ch in deltas for c in ch),
                          {e.originator_id for e in events}, table.get)
    _store(table, writes if keep is None else writes[:keep])


def test_a_worker_that_died_in_the_middle_of_a_batch_resumes_from_the_last_whole_batch() -> None:
    events = history(300)
    first, second = events[:200], events[200:]
    # second batch closes cases that the first opened, so records are deleted too
    second += [Envelope(len(events) + i + 1, e.originator_id, 2, "Incident.Rejected",
                        "2026-11-28T00:00:00+00:00", {"centers": CENTERS, "reason": "no"})
               for i, e in enumerate(first[:30]) if e.name == "Reported"]
    table: dict[str, Any] = {}
    live = new_state("130700", "e", queue_size=20)
    _write_batch(table, live, first)
    after_first = orjson.dumps(live.view, option=orjson.OPT_SORT_KEYS)
    _write_batch(table, live, second, keep=150)  # died after 150 records: no meta record
    states, repairs = load(list(table.items()), 20)
    assert orjson.dumps(states["130700"].view, option=orjson.OPT_SORT_KEYS) == after_first
    assert states["130700"].batch == 1 and repairs
    _store(table, repairs)
    assert load(list(table.items()), 20)[1] == []  # repaired: nothing left to roll back
    restarted = load(list(table.items()), 20)[0]["130700"]
    _write_batch(table, restarted, second)  # the batch's events come again
    assert restarted.view == live.view and restarted.seq == live.seq
    reloaded = load(list(table.items()), 20)[0]["130700"]
    assert reloaded.view == live.view and len(reloaded.center.cases) == len(live.center.cases)
