"""Pure storm windows and the alert fold, one event at a time and as runs."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.alerts import ALERTS_LIMIT, STORMS_LIMIT, _iso
from projections.center_view import apply, new_center, step_run
from projections.envelope import Envelope
from projections.patch import apply_changes
from projections.storm import THRESHOLDS, keys_for, tumble, window_start

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
    center = new_center("town")
    view = center.view
    threshold = THRESHOLDS[("camera", 10)]
    for n in range(1, 51):
        apply(center, raised(n, 1_800_000_000 + n * 0.1))
    assert len(view["alerts"]) == threshold - 1
    storm = view["storms"]["camera:cam-1:10"]
    assert storm["count"] == 50 and storm["active"]
    assert view["alert_counts"]["raised"] == 50 and view["alert_counts"]["in_storm"] == 51 - threshold


def test_storm_ends_when_the_next_window_starts() -> None:
    center = new_center("town")
    view = center.view
    for n in range(1, 16):
        apply(center, raised(n, 1_800_000_000 + n * 0.1))
    apply(center, raised(16, 1_800_000_030))
    assert view["storms"]["camera:cam-1:10"]["active"] is False
    assert "alert-16" in view["alerts"]


def test_acknowledge_and_dismiss_drop_unacknowledged_once() -> None:
    center = new_center("town")
    view = center.view
    apply(center, raised(1, 1_800_000_000))
    apply(center, raised(2, 1_800_000_100, camera="cam-2"))
    apply(center, handled(3, 1, "Acknowledged"))
    apply(center, handled(4, 1, "Dismissed", was="acknowledged"))
    apply(center, handled(5, 2, "Dismissed"))
    counts = view["alert_counts"]
    assert (counts["unacknowledged"], counts["acknowledged"], counts["dismissed"]) == (0, 1, 2)
    assert view["alerts"] == {}


def test_alert_feed_is_bounded() -> None:
    center = new_center("town")
    view = center.view
    for n in range(1, ALERTS_LIMIT + 30):
        apply(center, raised(n, 1_800_000_000 + n * 100, camera=f"cam-{n}", grid=f"g{n}"))
    assert len(view["alerts"]) == ALERTS_LIMIT
    assert "alert-1" not in view["alerts"] and f"alert-{ALERTS_LIMIT + 29}" in view["alerts"]


def test_a_run_of_storm_alerts_folds_to_a_bounded_delta() -> None:
    events = [raised(n, 1_800_000_000 + n * 0.01) for n in range(1, 501)]
    center = new_center("town")
    mirror = copy.deepcopy(center.view)
    changes = step_run(center, events)
    assert len(changes) < 80  # one op per touched key, not ~6 per alert
    view = apply_changes(mirror, changes)
    assert view == center.view
    one_by_one = new_center("town")
    for event in events:
        apply(one_by_one, event)
    assert view == one_by_one.view
    assert view["storms"]["camera:cam-1:10"]["count"] == 500


HANDLED_NAMES = ["Updated", "Ended", "RuleFired", "Acknowledged", "Dismissed",
                 "LinkedToIncident", "IncidentCreated"]


@st.composite
def alert_histories(draw: Any) -> list[Envelope]:
    """Raised alerts over a few cameras and grids (some late, some past the feed limit) mixed
    with updates, rule firings and officers' actions on alerts raised before."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    cameras = draw(st.sampled_from([1, 2, 150]))
    spread = draw(st.sampled_from([5, 30, 300, 3000]))
    events: list[Envelope] = []
    for n in range(1, draw(st.integers(1, 300)) + 1):
        if not events or rng.random() < 0.75:
            data: dict[str, Any] = {
                "centers": CENTERS, "camera": f"c{rng.randrange(cameras)}",
                "grid": f"g{rng.randrange(3)}", "label": rng.choice(["person", "car", "fire"]),
                "start_time": 1_800_000_000 + rng.random() * spread, "score": 0.5,
                "kind": "camera", "zones": ["gate"]}
            events.append(Envelope(n, f"alert-{n}", 1, "CameraAlert.Raised", "2027-01-01", data))
            continue
        target = rng.choice([e for e in events if e.name == "Raised"]).originator_id
        name = rng.choice(HANDLED_NAMES)
        data = {"centers": CENTERS, "was": rng.choice(["new", "new", "acknowledged"]),
                "changes": rng.choice([{}, {"score": 0.9}, {"zones": ["yard"]}]),
                "rule": "watch", "priority": rng.choice([None, "urgent"])}
        if name == "RuleFired" and rng.random() < 0.5:
            data["incident"] = "incident-1"
        events.append(Envelope(n, target, 2, f"CameraAlert.{name}", "2027-01-01", data))
    return events


@settings(max_examples=150, deadline=None)
@given(alert_histories(), st.lists(st.integers(1, 80), min_size=1, max_size=10))
def test_folding_alerts_as_runs_equals_folding_them_one_by_one(
    events: list[Envelope], sizes: list[int]
) -> None:
    one_by_one = new_center("town")
    for event in events:
        apply(one_by_one, event)
    runs = new_center("town")
    mirror = copy.deepcopy(runs.view)  # what a console applying the deltas holds
    start = 0
    for size in sizes * len(events):
        if start >= len(events):
            break
        changes = step_run(runs, events[start:start + size])
        apply_changes(mirror, copy.deepcopy(changes))
        assert mirror == runs.view
        start += size
    assert runs.view == one_by_one.view
    assert step_run(runs, events) == []  # every event already applied


def acknowledged_in_storm(n: int, alert: int, ref: str) -> Envelope:
    return Envelope(n, f"alert-{alert}", 2, "CameraAlert.Acknowledged", "2027-01-01T00:00:01+00:00",
                    {"centers": CENTERS, "was": "new", "actor": {"user": "duty"}, "note": "",
                     "storms": [ref]})


def test_a_storm_acknowledged_with_its_alerts_is_marked_until_another_alert_arrives() -> None:
    center = new_center("town")
    for n in range(1, 31):
        apply(center, raised(n, 1_800_000_000 + n * 0.1))
    storm = center.view["storms"]["camera:cam-1:10"]
    assert "acked" not in storm and storm["count"] == 30
    # another window's acknowledgement, or one without a storm, marks nothing
    apply(center, acknowledged_in_storm(31, 1, "camera:cam-1:10@1799999990"))
    apply(center, handled(32, 2, "Acknowledged"))
    assert "acked" not in center.view["storms"]["camera:cam-1:10"]
    apply(center, acknowledged_in_storm(33, 3, "camera:cam-1:10@1800000000"))
    apply(center, acknowledged_in_storm(34, 4, "camera:cam-1:10@1800000000"))
    assert center.view["storms"]["camera:cam-1:10"]["acked"] == 30
    assert center.view["storms"]["camera:cam-1:60"].get("acked") is None  # its own ack, per window
    apply(center, raised(35, 1_800_000_005))
    storm = center.view["storms"]["camera:cam-1:10"]
    assert (storm["count"], storm["acked"]) == (31, 30)  # one more alert: shown again


def test_storm_acknowledgements_fold_as_a_run_like_one_by_one() -> None:
    events = [raised(n, 1_800_000_000 + n * 0.1) for n in range(1, 31)]
    events += [acknowledged_in_storm(30 + i, i, "camera:cam-1:10@1800000000") for i in range(1, 6)]
    events += [raised(n, 1_800_000_000 + n * 0.1) for n in range(36, 40)]
    one_by_one = new_center("town")
    for event in events:
        apply(one_by_one, event)
    as_runs = new_center("town")
    before = copy.deepcopy(as_runs.view)
    for i in range(0, len(events), 7):
        apply_changes(before, step_run(as_runs, events[i:i + 7]))
    assert as_runs.view == one_by_one.view == before
    assert one_by_one.view["storms"]["camera:cam-1:10"]["acked"] == 30


def reference_storms(events: list[Envelope]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Storm windows, storm summaries and the in-storm count of raised alerts, folded the plain
    way (one alert, one key at a time, no copy on write, no fast path): what the view's fold
    must give however it is optimized."""
    windows: dict[str, Any] = {}
    storms: dict[str, Any] = {}
    in_storm = 0
    for event in events:
        data, hit = event.data, False
        label = data["label"]
        for key, kind, ident, size, threshold in keys_for(data["camera"], data["grid"]):
            storm = storms.get(key)
            active = storm is not None and storm["active"]
            window = None if active else windows.get(key)
            current = (storm["start_ts"], storm["count"]) if active else (
                (window[0], window[1]) if window else None)
            (start, count), counted = tumble(current, data["start_time"], size)
            if not counted:
                continue
            if active and start == storm["start_ts"]:
                storm["count"] = count
                storm["labels"][label] = storm["labels"].get(label, 0) + 1
                hit = True
                continue
            same = window is not None and window[0] == start
            labels = dict(window[2]) if same else {}
            labels[label] = labels.get(label, 0) + 1
            first_n = window[3] if same else event.notification_id
            if count < threshold:
                if active:
                    storm["active"] = False
                windows[key] = [start, count, labels, first_n]
                continue
            hit = True
            if storm is None and len(storms) >= STORMS_LIMIT:
                pool = [s for s in storms.values() if not s["active"]] or list(storms.values())
                del storms[min(pool, key=lambda s: (s["first_n"], s["key"]))["key"]]
            windows.pop(key, None)
            storms[key] = {
                "key": key, "kind": kind, "id": ident, "window": size, "start_ts": start,
                "start": datetime.fromtimestamp(start, UTC).isoformat(),
                "end": datetime.fromtimestamp(start + size, UTC).isoformat(),
                "threshold": threshold, "count": count, "first_at": event.at,
                "first_n": event.notification_id, "window_first_n": first_n, "labels": labels,
                "active": True}
        in_storm += hit
    return windows, storms, in_storm


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cameras=st.sampled_from([1, 3, 40, 100]),
       spread=st.sampled_from([20, 300, 3000, 30000]), size=st.integers(1, 2000),
       runs=st.lists(st.integers(1, 700), min_size=1, max_size=5))
def test_the_storm_fold_equals_a_plain_reference(
    seed: int, cameras: int, spread: int, size: int, runs: list[int]
) -> None:
    """Bursts on a few or many cameras (more storms than the view keeps), some alerts late,
    folded in runs of any length: the same windows, storms and in-storm count as the plain
    fold above."""
    rng = random.Random(seed)
    events = []
    for n in range(1, size + 1):
        camera = rng.randrange(cameras)
        at = (1_800_000_000 + n * spread / size if rng.random() < 0.8
              else 1_800_000_000 + rng.random() * spread)
        events.append(raised(n, at, camera=f"cam-{camera}", grid=f"g{camera % 7}",
                             label=rng.choice(["person", "car"])))
    center = new_center("city")
    start = 0
    while start < len(events):
        for length in runs:
            step_run(center, events[start:start + length])
            start += length
    windows, storms, in_storm = reference_storms(events)
    assert center.view["storm_windows"] == windows
    assert center.view["storms"] == storms
    assert center.view["alert_counts"]["in_storm"] == in_storm


@settings(max_examples=300, deadline=None)
@given(at=st.one_of(st.integers(-62_135_596_800, 253_402_300_799),
                    st.floats(-62_135_596_800, 253_402_300_799, allow_nan=False)))
def test_a_storms_times_are_written_as_isoformat_writes_them(at: float) -> None:
    """The storm's `start` and `end` (whole seconds, written without a datetime per window)
    are what `datetime.isoformat()` gives, on any day, before 1970 included."""
    assert _iso(at) == datetime.fromtimestamp(at, UTC).isoformat()
