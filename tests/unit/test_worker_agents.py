"""The faust agents, driven with `agent.test_context()` (no broker) and a hand-written fan-out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.persistence import Notification

from infra.distributed.relay import encode
from projections.center_view import apply, new_center
from projections.patch import Change, View
from streams.app import TABLE, WorkerConfig, create_app
from streams.center_table import load
from streams.routing import route, stored_envelope


class RecordingFanout:
    """A fan-out that keeps what it was given."""

    def __init__(self) -> None:
        self.deltas: list[tuple[str, str, int, list[Change]]] = []

    async def publish(self, center: str, epoch: str, deltas: list[tuple[int, list[Change]]],
                      view: View) -> None:
        for seq, changes in deltas:
            self.deltas.append((center, epoch, seq, changes))


def _stored(n: int, incident: str, name: str, version: int) -> bytes:
    """A `linkage.events` value, as the relay encodes it."""
    state = {"centers": ["city"], "grid": "g1", "actor": {"user": "u"}, "description": "d",
             "timestamp": {"_type_": "datetime_iso", "_data_": f"2026-01-01T00:00:{n:02d}"}}
    notification = Notification(id=n, originator_id=incident, originator_version=version,
                                topic=f"domain.incident:Incident.{name}",
                                state=orjson.dumps(state))
    return encode(notification)[1]


async def test_the_project_agent_folds_each_event_once_and_publishes_its_delta(
        tmp_path: Path) -> None:
    fanout = RecordingFanout()
    config = WorkerConfig(app_id="test-worker", bootstrap="127.0.0.1:9", topic="events",
                          centers=frozenset({"city"}), datadir=tmp_path)
    app = create_app(config, fanout, new_epoch=lambda: "e1")
    project: Any = app.agents["project"]
    events = [_stored(1, "a", "Reported", 1), _stored(2, "a", "Accepted", 2)]
    async with project.test_context() as agent:
        # two by-center records, the second a redelivery of the first event
        for batch in ([events[0], events[1]], [events[0]]):
            await agent.put(route([(0, e) for e in batch], frozenset({"city"}))[0][1],
                            key="city")
        # the agent folds in batches: give the last batch its window to close
        for _ in range(100):
            if len(fanout.deltas) >= 2 and "city" in app.tables[TABLE]:
                break
            await asyncio.sleep(0.02)
    assert [(c, e, s) for c, e, s, _ in fanout.deltas] == [("city", "e1", 1), ("city", "e1", 2)]
    expected = new_center("city")
    for event in events:
        apply(expected, stored_envelope(event))
    meta = app.tables[TABLE]["city"]
    assert meta["seq"] == 2 and meta["applied"] == {"0": 2}
    states, repairs = load(app.tables[TABLE].data.items(), expected.queue_size)
    assert repairs == []
    assert orjson.dumps(states["city"].view, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        expected.view, option=orjson.OPT_SORT_KEYS)
