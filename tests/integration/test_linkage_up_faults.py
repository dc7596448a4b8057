"""Every fault under `linkage up` itself, with consoles on both hubs and reports flowing: SIGKILL
the worker, one hub, then the (in-memory) broker. `linkage up` restarts each; afterwards every
acknowledged report is stored once, the views (incidents and camera alerts) equal a replay, no
console ever went back to an emptier view (the rebuild after the broker's restart runs under a
staged epoch), and the healthy hub answered every request the whole time.

(The relay's kill under `linkage up` is in test_linkage_up.py.)
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench._stack import redis_views, replay_views, wait_until
from tests.integration.distributed import Console, canonical
from tests.integration.test_distributed_faults import Watch, _never_emptier
from tests.integration.test_linkage_up import CITY, Up, children
from tests.integration.test_linkage_up import (
    up as up,  # the fixture: `linkage up` on fresh services
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Reports:
    """Incidents posted over HTTP to both hubs (a refused or failed post is simply not
    acknowledged) and camera alerts ingested in process, until stopped."""

    def __init__(self, up: Up, service: Any, settings: Any, jurisdiction: Any) -> None:
        from infra.bootstrap import build_alerts
        from infra.loaders.cameras import DEFAULT_CAMERAS, load_cameras

        self.up = up
        self.grids = [g.id for g in jurisdiction.grids()]
        self.cameras = load_cameras(DEFAULT_CAMERAS, jurisdiction, strict=False).cameras()[:4]
        self.alerts = build_alerts(settings, jurisdiction, service)
        self.acknowledged: list[str] = []
        self.acknowledged_alerts: list[str] = []
        self.rng = random.Random(41)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._incidents, daemon=True),
                         threading.Thread(target=self._camera_alerts, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _incidents(self) -> None:
        with httpx.Client(timeout=10, headers=self.up.headers) as client:
            for n in itertools.count():
                if self._stop.wait(0.15):
                    return
                try:
                    r = client.post(self.up.url(n % 2) + "/api/incidents", json={
                        "source": "hotline", "category": "noise", "severity": "routine",
                        "grid": self.rng.choice(self.grids), "description": f"report {n}"})
                except httpx.HTTPError:
                    continue  # that hub is down: the report was not acknowledged
                if r.status_code == 201:
                    self.acknowledged.append(r.json()["id"])

    def _camera_alerts(self) -> None:
        from domain.camera_alert import Observation

        feed = {"user": "feed", "role": "feed", "center": None}
        for i in itertools.count(0, 5):
            if self._stop.wait(0.5):
                return
            burst = [Observation(feed_event_id=f"up-fault-{i + j}",
                                 camera=self.rng.choice(self.cameras).id,
                                 start_time=1_800_000_000.0 + (i + j) / 4, label="person")
                     for j in range(5)]
            self.acknowledged_alerts += [str(r.alert) for r in
                                         self.alerts.ingest("test-feed", burst, feed)]

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def _kill_and_wait_restart(up: Up, name: str) -> None:
    before = children(up.process.pid)[name]
    os.kill(before, signal.SIGKILL)
    wait_until(lambda: children(up.process.pid).get(name) not in (None, before), 120,
               what=f"{name} restarted by linkage up")


def test_worker_hub_and_broker_killed_under_linkage_up(up: Up, tmp_path: Path) -> None:
    from infra.bootstrap import build_service
    from infra.loaders.jurisdiction import DEFAULT_JURISDICTION, load_jurisdiction
    from infra.settings import Settings

    wait_until(lambda: up.healthy(0) and up.healthy(1), 120, what="both hubs answering")
    wait_until(lambda: {"broker", "relay", "worker", "hub1", "hub2"}
               <= children(up.process.pid).keys(), 60, what="every child running")
    jurisdiction = load_jurisdiction(DEFAULT_JURISDICTION)
    centers = [unit.id for unit in jurisdiction.centers()]
    settings = Settings(store="postgres", postgres_dsn=up.env["LINKAGE_POSTGRES_DSN"],
                        postgres_schema=up.env["LINKAGE_POSTGRES_SCHEMA"],
                        data_dir=tmp_path / "reader", jwt_secret=up.secret)
    service = build_service(settings, jurisdiction)
    prefix = up.env["LINKAGE_REDIS_PREFIX"]
    redis_url = up.env["LINKAGE_REDIS_URL"]
    token = up.headers["Authorization"].removeprefix("Bearer ")
    consoles = [Console(f"{up.url(hub).replace('http', 'ws')}/ws/console?center={CITY}"
                        f"&token={token}") for hub in (0, 1)]
    watch = Watch(up.url(1), token)  # hub2 stays healthy through every fault
    reports = Reports(up, service, settings, jurisdiction)

    def city_seq() -> int:
        return redis_views(redis_url, [CITY], prefix)[CITY][1]

    try:
        wait_until(lambda: city_seq() > 20, 120, what="deltas flowing")
        _kill_and_wait_restart(up, "worker")
        mark = city_seq()
        wait_until(lambda: city_seq() > mark + 10, 120, what="deltas after the worker's restart")
        _kill_and_wait_restart(up, "hub1")
        wait_until(lambda: up.healthy(0), 120, what="hub1 answering again")
        epochs = {c: state[0] for c, state in redis_views(redis_url, centers, prefix).items()
                  if state[0]}
        _kill_and_wait_restart(up, "broker")
        time.sleep(5)  # reports keep flowing while the relay and worker find the new broker
        reports.stop()

        def rebuilt() -> bool:
            views, _ = replay_views(service, centers)
            state = redis_views(redis_url, centers, prefix)
            return (all(state[c][0] != epoch for c, epoch in epochs.items())
                    and all(state[c][2]["position"] == views[c]["position"] for c in centers))

        wait_until(rebuilt, 300, every=1.0,
                   what=f"views rebuilt under new epochs; linkage up said:\n{up.output()[-3000:]}")
        views, _ = replay_views(service, centers)
        state = redis_views(redis_url, centers, prefix)
        for center in centers:
            assert canonical(state[center][2]) == canonical(views[center]), f"view of {center}"

        # Every acknowledged report is stored once.
        stored: dict[str, int] = {}
        for n in service.recorder.select_notifications(start=1, limit=10**7):
            if n.topic.endswith(("Incident.Reported", "CameraAlert.Raised")):
                stored[str(n.originator_id)] = stored.get(str(n.originator_id), 0) + 1
        assert reports.acknowledged and reports.acknowledged_alerts
        assert all(count == 1 for count in stored.values())
        assert set(reports.acknowledged) <= set(stored)
        assert set(reports.acknowledged_alerts) <= set(stored)

        # Consoles on both hubs end on the replay's view and never went back meanwhile.
        for console in consoles:
            wait_until(lambda c=console: (c.state() or ("", 0, {}))[2].get("position")
                       == views[CITY]["position"], 90, what="a console caught up")
            _never_emptier(console)
        assert watch.answers > 10 and watch.failures == []
        assert "broker (pid" in up.output() and "worker (pid" in up.output()
    finally:
        reports.stop()
        watch.stop()
        for console in consoles:
            console.disconnect()
        service.close()
