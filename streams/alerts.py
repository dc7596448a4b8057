"""Storm counting as faust windowed tables, for distributed mode.

The center-view fold (projections/alerts.py, run by the `project` agent in streams/app.py)
already keeps storm summaries per center. This module adds the cluster-wide variant: one
tumbling-window table per window size (10 s, 60 s), keyed by camera and by grid, windowed on
the alert's own start time (`relative_to_field`), never the wall clock. The thresholds and
keys come from projections/storm.py, so both modes agree on what a storm is. When a key
crosses its threshold, and then once every further `threshold` alerts, a StormUpdate goes
to the sink (a storms topic, or the Redis fan-out): a bounded number of messages per
window, whatever the burst. streams/app.py wires it into the worker: its `route` agent sends
each raised alert, keyed by grid, to `<worker-id>-alerts`; updates go to `<worker-id>-storms`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import faust

from projections.envelope import Envelope
from projections.storm import THRESHOLDS, WINDOWS, is_storm, keys_for, window_start


class AlertRaised(faust.Record, serializer="json"):
    """The part of a CameraAlert.Raised event that storm counting needs."""

    alert: str
    camera: str | None
    grid: str
    label: str
    start_time: float


class StormUpdate(faust.Record, serializer="json"):
    key: str
    kind: str
    id: str
    window: int
    start: int
    count: int
    threshold: int


def alert_raised(envelope: Envelope) -> AlertRaised | None:
    """The storm-relevant fields of a stored event; None for anything but CameraAlert.Raised."""
    if envelope.type != "CameraAlert.Raised":
        return None
    data = envelope.data
    at = data.get("start_time")
    if not isinstance(at, (int, float)) or not isinstance(data.get("grid"), str):
        return None
    return AlertRaised(alert=envelope.originator_id, camera=data.get("camera"),
                       grid=data["grid"], label=str(data.get("label", "alert")),
                       start_time=float(at))


def should_report(kind: str, size: int, count: int) -> bool:
    """At the threshold, then every `threshold` alerts: bounded updates per window."""
    threshold = THRESHOLDS[(kind, size)]
    return is_storm(kind, size, count) and (count - threshold) % threshold == 0


def to_topic(storms: faust.TopicT) -> Callable[[StormUpdate], Awaitable[Any]]:
    """A sink that sends storm updates to a topic, keyed by storm key."""

    async def send(update: StormUpdate) -> None:
        await storms.send(key=update.key, value=update)

    return send


def add_storm_tables(
    app: faust.App,
    alerts: faust.TopicT,
    sink: Callable[[StormUpdate], Awaitable[Any]],
    *,
    partitions: int | None = None,
) -> dict[int, Any]:
    """Register one windowed table per window size and the agent that counts into them.

    `sink` receives each StormUpdate (to_topic(...) for a topic, or the Redis fan-out).

    `alerts` carries AlertRaised values keyed by camera (or grid): every key's counts then
    live in one partition, so one agent instance writes each table entry (no concurrency > 1).
    """
    tables: dict[int, Any] = {}
    for size in WINDOWS:
        tables[size] = (
            app.Table(f"alert-storms-{size}s", default=int, partitions=partitions, key_type=str)
            .tumbling(timedelta(seconds=size), expires=timedelta(seconds=size * 6))
            .relative_to_field(AlertRaised.start_time)  # type: ignore[arg-type]  # a faust field
        )

    @app.agent(alerts, name="count-storms")
    async def count_storms(stream: faust.StreamT[AlertRaised]) -> None:
        async for alert in stream:
            for key, kind, ident, size in keys_for(alert.camera, alert.grid):
                table = tables[size]
                table[key] += 1
                count = table[key].value()  # the window of the alert's start_time
                if should_report(kind, size, count):
                    update = StormUpdate(key=key, kind=kind, id=ident, window=size,
                                         start=window_start(alert.start_time, size), count=count,
                                         threshold=THRESHOLDS[(kind, size)])
                    await sink(update)

    app.linkage_storms = {"tables": tables, "agent": count_storms}  # type: ignore[attr-defined]
    return tables
