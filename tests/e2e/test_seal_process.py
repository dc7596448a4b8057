"""The sealer in a process of its own (`LINKAGE_SEAL_PROCESS`, `linkage serve`'s default): it seals
what the server and the ingest writer store, a killed child is replaced and sealing goes on
from where the chain ends, and the child never outlives its server."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import spawn_server, start_server
from tests.e2e.alerting import alert, post_alerts
from tests.e2e.test_http_api import REPORT
from tests.e2e.test_ingest_writer import _alive, _children, _cmdline
from tests.integration.sealed_store import Store


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
    in_this_process: set[str] = set()
    real_read = sealer.read

    def read(start: int, limit: int):  # type: ignore[no-untyped-def]
        in_this_process.add(threading.current_thread().name)
        return real_read(start, limit)

    sealer.read = read
    try:
        _store(server, "first")
        last = recorder.max_notification_id()
        wait_for(lambda: sealer.position() == last, "the child sealed every notification")
        first = sealer.process.pid
        assert first is not None and first != os.getpid() and _alive(first)
        assert in_this_process == set()  # nothing was sealed in the server's process
        assert len(recorder.unsealed) == 0  # the commits went to the child, none wait here

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
        sealer.read = real_read
        server.stop()
    wait_for(lambda: not _alive(second), "the child stopped with the server", timeout=20)
    assert sealer.process.pid is None


def test_a_killed_server_takes_its_sealer_process_with_it(tmp_path: Path) -> None:
    """kill -9 of `linkage serve`: its sealer child sees another parent and exits."""
    served = spawn_server(tmp_path / "data", env={"LINKAGE_INGEST_PROCESS": "false"})
    try:
        wait_for(lambda: any(b"spawn_main" in _cmdline(pid)
                             for pid in _children(served.process.pid)),  # type: ignore[attr-defined]
                 "the sealer process started")
        sealers = [pid for pid in _children(served.process.pid)  # type: ignore[attr-defined]
                   if b"spawn_main" in _cmdline(pid)]
        assert len(sealers) == 1, sealers
    finally:
        served.kill()
    wait_for(lambda: not _alive(sealers[0]), "the orphaned sealer exited", timeout=20)


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
