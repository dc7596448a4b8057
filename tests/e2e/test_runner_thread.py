"""The embedded runner folds in its own thread (or in a process of its own) and the sealer seals
in a worker thread (or in a process of its own), never on the server's event loop; after a burst of alerts mixed with officers' commands (and view reads
while they fold), the views equal a replay of the log and the seal chain verifies to its end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from infra.bootstrap import notification_reader
from infra.runner.embedded import EmbeddedRunner
from infra.store.view_store import MemoryViewStore
from tests.conftest import start_server
from tests.e2e.alerting import CENTERS, alert, post_alerts
from tests.e2e.test_http_api import DUE, REPORT
from tests.threads import note_threads


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


@pytest.mark.parametrize(("runner_process", "seal_process"),
                         [(False, False), (False, True), (True, True)],
                         ids=["sealer-thread", "sealer-process", "runner-and-sealer-processes"])
def test_views_and_seal_chain_equal_a_replay_after_a_burst_mixed_with_commands(
        tmp_path: Path, runner_process: bool, seal_process: bool) -> None:
    server = start_server(tmp_path / "data", seal_interval=0.1, seal_process=seal_process,
                          runner_process=runner_process)
    embedded = server.embedded
    # The runner in this process, or the mirror of its child's views (runner_process.py).
    runner: Any = embedded.mirror if runner_process else embedded.runner  # type: ignore[attr-defined]
    folding_threads, unwrap_fold = (note_threads(runner, "read") if not runner_process
                                    else (set(), lambda: None))
    sealer = embedded.sealer  # type: ignore[attr-defined]
    sealing_threads, unwrap_seal = note_threads(sealer, "read")
    try:
        errors: list[str] = []

        def burst() -> None:
            for b in range(20):
                response = post_alerts(server, [alert(f"burst-{b}-{k}", start_time=1_800_000_000.0
                                                      + b * 100 + k) for k in range(100)])
                if response.status_code != 200:
                    errors.append(response.text)

        def commands() -> None:
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
                for _ in range(25):
                    incident = client.post("/api/incidents", json=REPORT).json()
                    for action, body in (("accept", {}), ("dispatch", {
                            "assignee": {"kind": "department", "id": "housing"}, "due": DUE})):
                        response = client.post(f"/api/incidents/{incident['id']}/{action}",
                                               json=body)
                        if response.status_code != 200:
                            errors.append(response.text)

        def reads() -> None:
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
                for _ in range(60):
                    for center in CENTERS:
                        if client.get(f"/api/centers/{center}/view").status_code != 200:
                            errors.append(f"view of {center}")

        workers = [threading.Thread(target=f) for f in (burst, commands, reads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(300)
        assert errors == []

        recorder = embedded.service.recorder  # type: ignore[attr-defined]
        last = recorder.max_notification_id()
        assert last >= 2000 + 75
        wait_for(lambda: runner.position == last, "the runner folded every notification")
        wait_for(lambda: sealer.position() == last, "the sealer sealed every notification")

        # Folded in the runner's thread only (after the catch-up at start, which ran before the
        # server did), never on the event loop's thread.
        if runner_process:  # folded in the child only; this process applied its frames
            assert embedded.runner is None and runner.child.pid is not None  # type: ignore[attr-defined]
            assert runner.batches > 0
        else:
            assert folding_threads and all(n.startswith("linkage-runner")
                                           for n in folding_threads)
        if seal_process:  # sealed in the child (tests/e2e/test_background_processes.py), none here
            assert sealing_threads == set() and sealer.process.pid is not None
        else:
            assert sealing_threads and server.thread.name not in sealing_threads

        replay = EmbeddedRunner(notification_reader(embedded.service),  # type: ignore[attr-defined]
                                MemoryViewStore(), runner.centers)
        replay.catch_up()
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
            for center in sorted(runner.centers):
                served = client.get(f"/api/centers/{center}/view")
                assert served.status_code == 200
                expected = orjson.dumps(replay.view(center), option=orjson.OPT_SORT_KEYS)
                assert orjson.dumps(served.json(), option=orjson.OPT_SORT_KEYS) == expected, center
        verified = sealer.verify()
        assert verified.ok, verified.message
        assert verified.count == last
    finally:
        unwrap_fold()
        unwrap_seal()
        server.stop()
