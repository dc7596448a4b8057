"""Every fault of a distributed deployment, with consoles connected and reports (incidents and
camera alerts) flowing: SIGKILL the relay, the worker, one hub, and the broker itself.

Afterwards every acknowledged report is in the store once, every view (incidents and alerts)
equals a replay, no console ever went back to an emptier view, and the healthy hub kept
answering. Real processes, real signals, real Tansu/PostgreSQL/Redis.
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.history import ScriptedHistory
from tests.integration.distributed import Console, Stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CITY = "130700"


def _grids(stack: Stack) -> list[str]:
    return [g.id for g in stack.jurisdiction.grids()]


def _hub(stack: Stack, name: str) -> str:
    port = free_port()
    stack.start(name, "serve", "--mode", "distributed", "--port", str(port))
    wait_until(lambda: "Uvicorn running" in stack.log(name) or
               stack.processes[name].poll() is not None, 60, what=f"{name} listening")
    assert stack.processes[name].poll() is None, stack.log(name)
    return f"http://127.0.0.1:{port}"


class Load:
    """Incidents and camera alerts written from threads, as the HTTP and feed paths would."""

    def __init__(self, stack: Stack, seed: int, incidents: int, alerts: int) -> None:
        from infra.bootstrap import build_alerts
        from infra.loaders.cameras import DEFAULT_CAMERAS, load_cameras

        self.history = ScriptedHistory(stack.service, _grids(stack), incidents=incidents,
                                       seed=seed)
        self.cameras = load_cameras(DEFAULT_CAMERAS, stack.jurisdiction, strict=False).cameras()[:4]
        self.alerts = build_alerts(stack.settings, stack.jurisdiction, stack.service)
        self.alert_count = alerts
        self.acknowledged_alerts: list[str] = []
        self.rng = random.Random(seed)
        self.threads = [threading.Thread(target=self.history.run, daemon=True),
                        threading.Thread(target=self._alerts, daemon=True)]

    def _alerts(self) -> None:
        from domain.camera_alert import Observation

        feed = {"user": "feed", "role": "feed", "center": None}
        for i in range(0, self.alert_count, 5):
            burst = [Observation(feed_event_id=f"fault-{i + j}",
                                 camera=self.rng.choice(self.cameras).id,
                                 start_time=1_800_000_000.0 + (i + j) / 4, label="person")
                     for j in range(5)]
            self.acknowledged_alerts += [r.alert for r in self.alerts.ingest("test-feed", burst,
                                                                              feed)
                                         ]

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self.threads:
            thread.join(300)
            assert not thread.is_alive(), "the load did not finish"


class Watch:
    """Polls a hub's view endpoint in a thread; records every failure to answer."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(0.2):
                try:
                    r = client.get(f"{self.base}/api/centers/{CITY}/view",
                                   headers={"Authorization": f"Bearer {self.token}"})
                    if r.status_code == 200:
                        self.answers += 1
                    else:
                        self.failures.append(f"{r.status_code} {r.text[:100]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


def _never_emptier(console: Console) -> None:
    """A console's view never goes back: every snapshot after the first is at or past the
    position the console already showed (a rebuild in progress is never served)."""
    from projections.patch import apply_changes

    position = 0
    view: dict[str, Any] | None = None
    for frame in list(console.frames):
        if frame["type"] == "snapshot":
            assert frame["view"]["position"] >= position, (
                f"a snapshot at position {frame['view']['position']} after {position}")
            view = frame["view"]
        elif frame["type"] == "delta" and view is not None:
            apply_changes(view, frame["changes"])
        if view is not None:
            position = view["position"]


def _reported_once(stack: Stack, load: Load) -> None:
    """Every acknowledged report (incident or alert) is stored once."""
    reported: dict[str, int] = {}
    for n in stack.service.recorder.select_notifications(start=1, limit=10**7):
        if n.topic.endswith(("Incident.Reported", "CameraAlert.Raised")):
            reported[str(n.originator_id)] = reported.get(str(n.originator_id), 0) + 1
    assert all(count == 1 for count in reported.values())
    incidents = sum(1 for n in stack.service.recorder.select_notifications(start=1, limit=10**7)
                    if n.topic.endswith("Incident.Reported"))
    assert incidents == load.history.reported
    assert {str(a) for a in load.acknowledged_alerts} <= set(reported)


@pytest.fixture
def deployment(tmp_path: Path, postgres_dsn: str, pg_schema: str,
               redis_url: str) -> Iterator[tuple[Stack, Any]]:
    from infra.distributed.tansu import TansuBroker

    broker = TansuBroker(log=tmp_path / "broker.log").start()
    stack = Stack(tmp_path / "stack", postgres_dsn, pg_schema, redis_url, broker.bootstrap)
    yield stack, broker
    stack.close()
    broker.stop()


def _restart_when_dead(stack: Stack, name: str, *args: str) -> None:
    wait_until(lambda: stack.processes[name].poll() is not None, 60, what=f"{name} exiting")
    stack.processes.pop(name)
    stack.start(name, *args)


def test_relay_worker_and_hub_killed_under_load_end_equal_to_a_replay(
        deployment: tuple[Stack, Any]) -> None:
    stack, _ = deployment
    stack.start("relay", "relay")
    stack.start("worker", "worker")
    hub1, hub2 = _hub(stack, "hub1"), _hub(stack, "hub2")
    consoles = [Console(f"{hub.replace('http', 'ws')}/ws/console?center={CITY}"
                        f"&token={stack.token}") for hub in (hub1, hub2)]
    watch = Watch(hub2, stack.token)
    load = Load(stack, seed=31, incidents=120, alerts=200).start()
    try:
        wait_until(lambda: stack.redis_state()[CITY][1] > 20, 90, what="deltas flowing")
        stack.kill("relay", signal.SIGKILL)
        stack.start("relay", "relay")
        wait_until(lambda: stack.redis_state()[CITY][1] > 60, 90, what="flowing again")
        stack.kill("worker", signal.SIGKILL)
        stack.start("worker", "worker")
        stack.kill("hub1", signal.SIGKILL)
        load.join()
        stack.wait_converged(180, views=True, what="views after the faults")
        stack.assert_views_equal_to_replay()
        _reported_once(stack, load)
        views, _ = stack.replay()
        wait_until(lambda: (consoles[1].state() or ("", 0, {}))[2].get("position")
                   == views[CITY]["position"], 60, what="the healthy hub's console caught up")
        for console in consoles:
            _never_emptier(console)
        assert watch.answers > 10 and watch.failures == []
    finally:
        watch.stop()
        for console in consoles:
            console.disconnect()


def test_broker_restart_rebuilds_under_a_staged_epoch_consoles_never_see_it_empty(
        deployment: tuple[Stack, Any]) -> None:
    stack, broker = deployment
    stack.start("relay", "relay")
    stack.start("worker", "worker")
    hub = _hub(stack, "hub")
    console = Console(f"{hub.replace('http', 'ws')}/ws/console?center={CITY}&token={stack.token}")
    watch = Watch(hub, stack.token)
    load = Load(stack, seed=37, incidents=150, alerts=200).start()
    try:
        wait_until(lambda: stack.redis_state()[CITY][1] > 60, 90, what="deltas flowing")
        epochs = {center: state[0] for center, state in stack.redis_state().items() if state[0]}
        before = stack.redis_state()[CITY]
        broker.stop()
        broker.start()
        # The worker exits (code 3) when its topics went back; its restart rebuilds every view
        # under a new epoch, which Redis takes only once it reached the old epoch's position.
        _restart_when_dead(stack, "worker", "worker")
        load.join()

        def rebuilt() -> bool:
            # The load may be over before the broker restarts: the old epoch's views then
            # already equal the replay, so convergence alone would not show the rebuild.
            state = stack.redis_state()
            return (all(state[center][0] != epoch for center, epoch in epochs.items())
                    and stack.views_converged())

        wait_until(rebuilt, 240, what="views rebuilt under new epochs after the broker restarted")
        stack.assert_views_equal_to_replay()
        _reported_once(stack, load)
        after = stack.redis_state()[CITY]
        assert after[0] != before[0], "the rebuild runs under a new epoch"
        views, _ = stack.replay()
        wait_until(lambda: (console.state() or ("", 0, {}))[2].get("position")
                   == views[CITY]["position"], 60, what="the console caught up")
        _never_emptier(console)
        snapshots = [f for f in console.frames if f["type"] == "snapshot"]
        assert snapshots[-1]["epoch"] == after[0]
        assert watch.answers > 10 and watch.failures == []
    finally:
        watch.stop()
        console.disconnect()
