"""The alert feed evicts the listed alert with the smallest notification id, also inside one run
that evicts many times (projections/alerts.py keeps a heap for that instead of a scan), whatever
order the feed's entries are in and with alerts handled or listed again in between."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.alerts import ALERTS_LIMIT, fold_alerts, new_alert_view
from projections.envelope import Envelope
from projections.patch import apply_changes

CENTERS = ["town", "district", "city"]


def raised(n: int) -> Envelope:
    # Each alert on a camera and grid of its own, an hour apart: no storm, every alert listed.
    return Envelope(n, f"alert-{n}", 1, "CameraAlert.Raised", "2027-01-01T00:00:00+00:00",
                    {"centers": CENTERS, "camera": f"cam-{n}", "grid": f"g{n}", "label": "person",
                     "start_time": 1_800_000_000 + n * 3600, "score": 0.7, "kind": "camera",
                     "actor": {"user": "f"}})


def acknowledged(n: int, alert: int) -> Envelope:
    return Envelope(n, f"alert-{alert}", 2, "CameraAlert.Acknowledged",
                    "2027-01-01T00:00:01+00:00",
                    {"centers": CENTERS, "was": "new", "actor": {"user": "duty"}})


def expected_feed(events: list[Envelope], start: dict[str, int]) -> dict[str, int]:
    """alert id -> n, by the rule itself: past the limit the smallest n goes."""
    feed = dict(start)
    for event in events:
        if event.type == "CameraAlert.Raised":
            if len(feed) >= ALERTS_LIMIT:
                del feed[min(feed, key=feed.__getitem__)]
            feed[event.originator_id] = event.notification_id
        else:
            feed.pop(event.originator_id, None)
    return feed


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), new=st.integers(1, 3 * ALERTS_LIMIT),
       handle_every=st.integers(2, 40))
def test_one_run_evicts_the_oldest_alerts_as_one_at_a_time_would(
        seed: int, new: int, handle_every: int) -> None:
    rng = random.Random(seed)
    view = new_alert_view()
    listed = list(range(1, ALERTS_LIMIT + 1))
    rng.shuffle(listed)  # the feed's dict order is not its n order
    for n in listed:
        apply_changes(view, fold_alerts(view, [raised(n)]))
    start = {f"alert-{n}": n for n in listed}
    events: list[Envelope] = []
    n = ALERTS_LIMIT
    for _ in range(new):
        n += 1
        events.append(raised(n))
        if n % handle_every == 0:  # handle a random listed-or-not alert meanwhile
            n += 1
            events.append(acknowledged(n, rng.randint(1, n - 1)))
    apply_changes(view, fold_alerts(view, events))
    assert {k: v["n"] for k, v in view["alerts"].items()} == expected_feed(events, start)
