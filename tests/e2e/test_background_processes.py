"""The projection runner, the sealer and the time-travel snapshots in processes of their own
(`LINKAGE_RUNNER_PROCESS`, `LINKAGE_SEAL_PROCESS`, `LINKAGE_SNAPSHOT_PROCESS`, `linkage serve`'s
defaults): the sealer's child seals what the server and the ingest writer store, a killed child
is replaced and sealing goes on from where the chain ends, and no child outlives its server; the
snapshots' child stores what `view?at=` reads; the runner's child folds what the server serves,
and a console sees every delta in order across a killed child."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from infra.bootstrap import notification_reader
from infra.runner.embedded import EmbeddedRunner
from infra.store.view_store import MemoryViewStore
from projections.patch import apply_changes
from tests.conftest import spawn_server, start_server
from tests.e2e.alerting import alert, post_alerts
from tests.e2e.test_http_api import REPORT
from tests.e2e.test_ingest_writer import _alive, _children, _cmdline
from tests.integration.sealed_store import Store
from tests.threads import note_threads


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def _store(server: Any, tag: str) -> None:
    """A few officers' reports and a batch of alerts (through the ingest writer process)."""
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
        for _ in range(5):
            assert client.post("/api/incidents", json=REPORT).status_code == 201
    response = post_alerts(server, [alert(f"{tag}-{k}", start_time=1_800_000_000.0 + k)
                                    for k in range(200)])
    assert response.status_code == 200, response.text


def test_the_sealer_process_seals_is_replaced_when_killed_and_stops_with_the_server(
        tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", seal_process=True, ingest_process=True,
                          seal_interval=0.1)
    embedded: Any = server.embedded
    sealer, recorder = embedded.sealer, embedded.service.recorder
    in_this_process, unwrap = note_threads(sealer, "read")
    try:
        _store(server, "first")
        last = recorder.max_notification_id()
        wait_for(lambda: sealer.position() == last, "the child sealed every notification")
        first = sealer.process.pid
        assert first is not None and first != os.getpid() and _alive(first)
        assert in_this_process == set()  # nothing was sealed in the server's process
        # The officers' five reports (committed here) went down the pipe as committed.
        wait_for(lambda: recorder.unsealed.sent >= 5, "the server's commits sent to the child")

        os.kill(first, signal.SIGKILL)
        wait_for(lambda: sealer.process.pid not in (None, first), "another sealer process")
        assert sealer.process.restarts == 1
        _store(server, "second")
        last = recorder.max_notification_id()
        wait_for(lambda: sealer.position() == last, "the new child sealed the rest")
        verified = sealer.verify()
        assert verified.ok, verified.message
        assert verified.count == last
        metrics = httpx.get(f"{server.url}/metrics", headers=server.headers).text
        assert "linkage_sealer_process_restarts_total 1.0" in metrics
        second = sealer.process.pid
    finally:
        unwrap()
        server.stop()
    wait_for(lambda: not _alive(second), "the child stopped with the server", timeout=20)
    assert sealer.process.pid is None


def test_a_killed_server_takes_its_child_processes_with_it(tmp_path: Path) -> None:
    """kill -9 of `linkage serve`: its runner, sealer and snapshots children see another parent
    and exit."""
    served = spawn_server(tmp_path / "data", env={"LINKAGE_INGEST_PROCESS": "false"})
    try:
        wait_for(lambda: sum(b"spawn_main" in _cmdline(pid)
                             for pid in _children(served.process.pid)) == 3,  # type: ignore[attr-defined]
                 "the runner's, the sealer's and the snapshots' processes started")
        sealers = [pid for pid in _children(served.process.pid)  # type: ignore[attr-defined]
                   if b"spawn_main" in _cmdline(pid)]
        assert len(sealers) == 3, sealers  # the runner's, the sealer's and the snapshots' children
    finally:
        served.kill()
    for pid in sealers:
        wait_for(lambda pid=pid: not _alive(pid), "the orphaned child exited", timeout=20)


def test_the_sealer_process_is_off_when_asked(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", seal_process=False, seal_interval=0.1)
    embedded: Any = server.embedded
    try:
        _store(server, "inline")
        last = embedded.service.recorder.max_notification_id()
        wait_for(lambda: embedded.sealer.position() == last, "sealed in this process")
        assert embedded.sealer.process is None
    finally:
        server.stop()


def test_a_row_changed_before_the_sealer_process_reached_it_is_named_by_verify(
        tmp_path: Path) -> None:
    """The server's commits reach the child as committed (`Forward`): a row an attacker changes
    in the table before the child seals it is reported modified, not sealed as changed."""
    server = start_server(tmp_path / "data", seal_process=True, seal_interval=5.0)
    embedded: Any = server.embedded
    sealer, recorder = embedded.sealer, embedded.service.recorder
    try:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
            assert client.post("/api/incidents", json=REPORT).status_code == 201
            first = recorder.max_notification_id()
            # A round just sealed it: the next is 5 s away.
            wait_for(lambda: sealer.position() == first, "the child sealed the first report")
            assert client.post("/api/incidents", json=REPORT).status_code == 201
        changed = recorder.max_notification_id()
        Store(embedded.settings).modify(changed)
        wait_for(lambda: sealer.position() == changed, "the child sealed the second report")
        verified = sealer.verify()
        assert not verified.ok
        assert f"modified: notification {changed} " in verified.message, verified.message
    finally:
        server.stop()


def test_the_snapshots_process_stores_what_view_at_reads(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", seal_process=True, snapshot_process=True,
                          seal_interval=0.1, seal_checkpoint_every=10, view_snapshot_every=50)
    embedded: Any = server.embedded
    recorder, travel = embedded.service.recorder, embedded.services.time_travel
    auditor = {"Authorization": f"Bearer {embedded.tokens.issue('aud', 'auditor', None)}"}

    def snapped() -> int:
        with sqlite3.connect(embedded.settings.snapshots_path) as conn:
            rows = conn.execute("SELECT position FROM linkage_view_snapshot_tracking").fetchall()
        return int(rows[0][0]) if rows else 0

    try:
        _store(server, "snap")
        last = recorder.max_notification_id()
        wait_for(lambda: snapped() >= last - 50, "the child stored snapshots up to the heads")
        assert travel.position == 0  # folded nothing in the server's process
        center = embedded.jurisdiction.root.id
        with httpx.Client(base_url=server.url, timeout=30) as client:
            live = client.get(f"/api/centers/{center}/view", headers=server.headers).json()
            at = client.get(f"/api/audit/centers/{center}/view",
                            params={"at": "2100-01-01T00:00:00Z"}, headers=auditor)
        assert at.status_code == 200, at.text
        assert at.json() == live
    finally:
        server.stop()


def _replayed_views(embedded: Any, centers: list[str]) -> dict[str, bytes]:
    """Every center's view as a fresh runner folds the whole log, in canonical bytes."""
    replay = EmbeddedRunner(notification_reader(embedded.service), MemoryViewStore(), centers)
    replay.catch_up()
    return {c: orjson.dumps(replay.view(c), option=orjson.OPT_SORT_KEYS) for c in centers}


async def _follow(server: Any, center: str, stop: asyncio.Event,
                  ) -> tuple[dict[str, Any], int, list[str]]:
    """A console that applies every delta it gets until `stop`, then drains what is left; what
    it saw go wrong (a seq skipped, another epoch, an error) is listed."""
    problems: list[str] = []
    async with websockets.connect(server.console_url(center)) as ws:
        await ws.send('{"type":"hello"}')
        first = orjson.loads(await ws.recv())
        assert first["type"] == "snapshot", first
        view, seq, epoch = first["view"], first["seq"], first["epoch"]
        while True:
            try:
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 1.0))
            except TimeoutError:
                if stop.is_set():
                    return view, seq, problems
                continue
            if frame["type"] == "snapshot":  # allowed, but the mirror should not need one
                problems.append(f"a snapshot at {frame['seq']}")
                view, seq, epoch = frame["view"], frame["seq"], frame["epoch"]
            elif frame["type"] != "delta" or frame["epoch"] != epoch or frame["seq"] != seq + 1:
                problems.append(f"unexpected {frame['type']} at {frame.get('seq')} after {seq}")
            else:
                apply_changes(view, frame["changes"])
                seq = frame["seq"]


async def test_the_runner_process_folds_what_the_server_serves_and_is_replaced_when_killed(
        tmp_path: Path) -> None:
    """`LINKAGE_RUNNER_PROCESS`: the views are folded in a child; the server's mirror serves
    `GET /view` and the consoles from the frames it sends. A child killed with SIGKILL is
    replaced, and a console that stayed connected sees every delta in order, ending at the view
    that a replay of the whole log gives."""
    server = start_server(tmp_path / "data", runner_process=True, ingest_process=True)
    embedded: Any = server.embedded
    mirror, recorder = embedded.mirror, embedded.service.recorder
    center = embedded.jurisdiction.root.id
    stop = asyncio.Event()
    try:
        assert embedded.runner is None  # nothing folds in the server's process
        console = asyncio.create_task(_follow(server, center, stop))
        await asyncio.to_thread(_store, server, "first")
        last = recorder.max_notification_id()
        await asyncio.to_thread(wait_for, lambda: mirror.position == last, "the child folded all")
        first = mirror.child.pid
        assert first is not None and first != os.getpid() and _alive(first)
        assert mirror.batches > 0

        os.kill(first, signal.SIGKILL)
        await asyncio.to_thread(wait_for, lambda: mirror.child.pid not in (None, first),
                                "another runner process")
        await asyncio.to_thread(_store, server, "second")
        last = recorder.max_notification_id()
        await asyncio.to_thread(wait_for, lambda: mirror.position == last,
                                "the new child folded the rest")
        stop.set()
        view, seq, problems = await console
        assert problems == []

        replayed = _replayed_views(embedded, sorted(mirror.centers))
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:
            for name in sorted(mirror.centers):
                served = await client.get(f"/api/centers/{name}/view")
                assert orjson.dumps(served.json(), option=orjson.OPT_SORT_KEYS) == \
                    replayed[name], name
            assert served.status_code == 200
            metrics = (await client.get("/metrics")).text
        assert orjson.dumps(view, option=orjson.OPT_SORT_KEYS) == replayed[center]
        assert seq == mirror.seqs[center]
        assert "linkage_runner_process_restarts_total 1.0" in metrics
        second = mirror.child.pid
    finally:
        stop.set()
        await asyncio.to_thread(server.stop)
    await asyncio.to_thread(wait_for, lambda: not _alive(second), "the child stopped", 20)
