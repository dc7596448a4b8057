"""Pure storm windows, the alert fold, and delta coalescing."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.alerts import ALERTS_LIMIT
from projections.center_view import apply, new_view, step
from projections.coalesce import compact
from projections.envelope import Envelope
from projections.patch import Change, apply_changes
from projections.storm import THRESHOLDS, tumble, window_start

CENTERS = ["town", "district", "city"]


def raised(n: int, at: float, camera: str = "cam-1", grid: str = "g1", label: str = "person") -> Envelope:
    return Envelope(n, f"alert-{n}", 1, "CameraAlert.Raised", "2027-01-01T00:00:00+00:00",
                    {"centers": CENTERS, "camera": camera, "grid": grid, "label": label,
                     "start_time": at, "score": 0.7, "kind": "camera", "actor": {"user": "f"}})


def handled(n: int, alert: int, name: str, was: str = "new") -> Envelope:
    return Envelope(n, f"alert-{alert}", 2, f"CameraAlert.{name}", "2027-01-01T00:00:01+00:00",
                    {"centers": CENTERS, "was": was, "actor": {"user": "duty"}})


def test_tumbling_windows_take_time_from_the_alert() -> None:
    assert window_start(1_800_000_009.9, 10) == 1_800_000_000
    state, counted = tumble(None, 1_800_000_001, 10)
    assert (state, counted) == ((1_800_000_000, 1), True)
    state, _ = tumble(state, 1_800_000_009, 10)
    assert state == (1_800_000_000, 2)
    later, _ = tumble(state, 1_800_000_010, 10)
    assert later == (1_800_000_010, 1)  # a new window starts from one
    late, counted = tumble(later, 1_800_000_005, 10)
    assert (late, counted) == (later, False)  # a late alert does not reopen an old window


def test_alerts_below_threshold_are_listed_then_a_storm_summarises() -> None:
    view = new_view("town")
    threshold = THRESHOLDS[("camera", 10)]
    for n in range(1, 51):
        apply(view, raised(n, 1_800_000_000 + n * 0.1))
    assert len(view["alerts"]) == threshold - 1
    storm = view["storms"]["camera:cam-1:10"]
    assert storm["count"] == 50 and storm["active"]
    assert view["alert_counts"]["raised"] == 50 and view["alert_counts"]["in_storm"] == 51 - threshold


def test_storm_ends_when_the_next_window_starts() -> None:
    view = new_view("town")
    for n in range(1, 16):
        apply(view, raised(n, 1_800_000_000 + n * 0.1))
    apply(view, raised(16, 1_800_000_030))
    assert view["storms"]["camera:cam-1:10"]["active"] is False
    assert "alert-16" in view["alerts"]


def test_acknowledge_and_dismiss_drop_unacknowledged_once() -> None:
    view = new_view("town")
    apply(view, raised(1, 1_800_000_000))
    apply(view, raised(2, 1_800_000_100, camera="cam-2"))
    apply(view, handled(3, 1, "Acknowledged"))
    apply(view, handled(4, 1, "Dismissed", was="acknowledged"))
    apply(view, handled(5, 2, "Dismissed"))
    counts = view["alert_counts"]
    assert (counts["unacknowledged"], counts["acknowledged"], counts["dismissed"]) == (0, 1, 2)
    assert view["alerts"] == {}


def test_alert_feed_is_bounded() -> None:
    view = new_view("town")
    for n in range(1, ALERTS_LIMIT + 30):
        apply(view, raised(n, 1_800_000_000 + n * 100, camera=f"cam-{n}", grid=f"g{n}"))
    assert len(view["alerts"]) == ALERTS_LIMIT
    assert "alert-1" not in view["alerts"] and f"alert-{ALERTS_LIMIT + 29}" in view["alerts"]


def test_a_batch_of_storm_alerts_coalesces_to_a_bounded_delta() -> None:
    view = new_view("town")
    changes: list[Change] = []
    for n in range(1, 501):
        step_changes = step(view, raised(n, 1_800_000_000 + n * 0.01))
        apply_changes(view, step_changes)
        changes.extend(step_changes)
    assert len(changes) > 2000
    assert len(compact(changes)) < 80


paths = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3)
ops = st.one_of(
    st.builds(lambda p, v: {"op": "set", "path": p, "value": v}, paths, st.integers(0, 9)),
    st.builds(lambda p: {"op": "del", "path": p}, paths),
    st.builds(lambda p, n: {"op": "push", "path": p, "value": {"n": n}, "max": 3}, paths,
              st.integers(0, 5)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=25))
def test_compacted_changes_give_the_same_view(changes: list[Any]) -> None:
    start: dict[str, Any] = {"a": {"b": 1}, "c": []}
    expected, got = copy.deepcopy(start), copy.deepcopy(start)
    try:
        apply_changes(expected, copy.deepcopy(changes))
    except (AttributeError, TypeError, KeyError):
        return  # ops that do not fit the shape (push onto an int) fail either way
    apply_changes(got, compact(copy.deepcopy(changes)))
    assert got == expected


def test_replay_in_any_batching_gives_the_same_view() -> None:
    rng = random.Random(7)
    events = [raised(n, 1_800_000_000 + rng.random() * 30, camera=rng.choice(["c1", "c2"]))
              for n in range(1, 300)]
    one = new_view("town")
    for event in events:
        apply(one, event)
    other = new_view("town")
    batch: list[Change] = []
    for event in events:
        changes = step(other, event)
        apply_changes(other, changes)
        batch.extend(changes)
    fresh = new_view("town")
    apply_changes(fresh, compact(batch))
    assert one == other == fresh
