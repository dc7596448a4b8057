"""The faust windowed-table storm counter agrees with the pure storm rules (agent.test_context)."""

from __future__ import annotations

import faust

from projections.envelope import Envelope
from projections.storm import THRESHOLDS
from streams.alerts import AlertRaised, StormUpdate, add_storm_tables, alert_raised, should_report

START = 1_800_000_000.0


def test_only_raised_alerts_are_counted() -> None:
    raised = Envelope(1, "a1", 1, "CameraAlert.Raised", "", {"camera": "c", "grid": "g",
                                                             "label": "person", "start_time": START})
    assert alert_raised(raised) == AlertRaised(alert="a1", camera="c", grid="g", label="person",
                                               start_time=START)
    assert alert_raised(Envelope(2, "a1", 2, "CameraAlert.Updated", "", {})) is None


def test_reports_are_bounded_per_window() -> None:
    threshold = THRESHOLDS[("camera", 10)]
    reported = [n for n in range(1, 10 * threshold + 1) if should_report("camera", 10, n)]
    assert reported == [threshold * k for k in range(1, 11)]


async def test_windowed_tables_find_a_storm_by_alert_time() -> None:
    app = faust.App("test-storms", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False,
                    web_enabled=False)
    alerts = app.topic("alerts", key_type=str, value_type=AlertRaised)
    updates: list[StormUpdate] = []

    async def sink(update: StormUpdate) -> None:
        updates.append(update)

    add_storm_tables(app, alerts, sink)
    agent = app.linkage_storms["agent"]  # type: ignore[attr-defined]
    threshold = THRESHOLDS[("camera", 10)]
    async with agent.test_context() as context:
        for i in range(threshold * 2):
            value = AlertRaised(alert=f"a{i}", camera="cam-1", grid="g1", label="person",
                                start_time=START + i * 0.1)
            await context.put(key="cam-1", value=value)
        # a later window starts counting again
        await context.put(key="cam-1", value=AlertRaised(alert="late", camera="cam-1", grid="g1",
                                                         label="person", start_time=START + 100))
    camera_10s = [u for u in updates if u.key == "camera:cam-1:10"]
    assert [u.count for u in camera_10s] == [threshold, threshold * 2]
    assert camera_10s[0].start == int(START)
