"""Group commit (infra/store/group_commit.py) keeps the semantics of one transaction per command,
on the SQLite event store `linkage serve` uses.

The batch is made deterministic: the test holds the recorder's commit lock while 200 commands
load, decide and queue their events, so all of them are committed by one transaction. Their
outcome is compared with the same 200 commands run one at a time on a fresh store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.application import IncidentService, VersionConflict
from domain.incident import Actor
from infra.settings import Settings
from infra.store.sqlite_recorder import LinkageSQLiteRecorder

CENTERS = ["t1", "d1", "c"]
REPORTER: Actor = {"user": "reporter", "role": "admin", "center": None}
INCIDENTS = 20
PER_INCIDENT = 10  # 200 commands
DUE = "2026-12-01T08:00:00+08:00"

Command = tuple[int, str, int, dict[str, Any], Actor]  # incident index, action, version, params


def open_service(data_dir: Path) -> IncidentService:
    settings = Settings().with_(data_dir=data_dir)
    return IncidentService(lambda grid: CENTERS, env=settings.eventsourcing_env())


def recorder_of(service: IncidentService) -> LinkageSQLiteRecorder:
    recorder = service.recorder
    assert isinstance(recorder, LinkageSQLiteRecorder)
    return recorder


def seed(service: IncidentService) -> list[str]:
    """20 incidents: the first half reported (version 1), the second half accepted (version 2)."""
    ids = []
    for i in range(INCIDENTS):
        incident = service.report(actor=REPORTER, grid="g1", source="hotline", category="noise",
                                  severity="routine", description=f"incident {i}")
        if i >= INCIDENTS // 2:
            service.act(str(incident.id), "accept", actor=REPORTER)
        ids.append(str(incident.id))
    return ids


def commands() -> list[Command]:
    """Per incident 10 commands: 7 at its current version (they conflict with each other: one
    may win) and 3 at a stale version (each must be refused)."""
    out: list[Command] = []
    for i in range(INCIDENTS):
        accepted = i >= INCIDENTS // 2
        action = "dispatch" if accepted else "accept"
        params: dict[str, Any] = (
            {"assignee": {"kind": "department", "id": "housing"}, "due": DUE} if accepted else {})
        current = 2 if accepted else 1
        for k in range(PER_INCIDENT):
            actor: Actor = {"user": f"officer-{i}-{k}", "role": "admin", "center": None}
            version = current if k < 7 else current - 1
            out.append((i, action, version, params, actor))
    return out


def run(service: IncidentService, ids: list[str], command: Command) -> str:
    i, action, version, params, actor = command
    try:
        incident = service.act(ids[i], action, actor=actor, expected_version=version, **params)
    except VersionConflict:
        return "409"
    return f"ok v{incident.version}"


def stored(service: IncidentService, ids: list[str]) -> list[tuple[int, int, str, str]]:
    """(incident index, version, event type, actor) of every stored event, in log order."""
    index = {incident_id: i for i, incident_id in enumerate(ids)}
    out = []
    for n in service.recorder.select_notifications(start=1, limit=10_000):
        state = service.mapper.transcoder.decode(n.state)
        out.append((index[str(n.originator_id)], n.originator_version, n.topic.rsplit(".", 1)[-1],
                    state["actor"]["user"]))
    return out


@pytest.fixture
def service(tmp_path: Path) -> Iterator[IncidentService]:
    service = open_service(tmp_path / "batched")
    yield service
    service.close()


def test_200_concurrent_commands_in_one_batch_give_the_events_and_409s_of_one_at_a_time(
        service: IncidentService, tmp_path: Path) -> None:
    ids = seed(service)
    recorder = recorder_of(service)
    todo = commands()
    results: list[str | None] = [None] * len(todo)

    def worker(n: int) -> None:
        results[n] = run(service, ids, todo[n])

    before = recorder.group_stats.batches
    with recorder._commit_lock:  # nothing commits until every command has queued its events
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(todo))]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        # The 60 stale commands are refused before they save; the other 140 queue.
        while (len(recorder._queued) < 140 or results.count("409") < 60) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(recorder._queued) == 140
        assert sum(r == "409" for r in results) == 60
    for thread in threads:
        thread.join(60)
    assert recorder.group_stats.batches == before + 1  # one transaction for all 140
    assert recorder.group_stats.largest == 140

    serial = open_service(tmp_path / "serial")
    try:
        serial_ids = seed(serial)
        serial_results = [run(serial, serial_ids, command) for command in todo]
        batched_events, serial_events = stored(service, ids), stored(serial, serial_ids)
    finally:
        serial.close()

    assert results.count("409") == serial_results.count("409") == 180
    assert sorted(r for r in results if r != "409") == sorted(
        r for r in serial_results if r != "409") == ["ok v2"] * 10 + ["ok v3"] * 10
    # The same events: per incident one new event of the same type at the same version; the
    # seeded history is the same; only who won each race may differ.
    assert [e[:3] for e in sorted(batched_events)] == [e[:3] for e in sorted(serial_events)]
    assert len(batched_events) == 30 + 20
    # Each success answered the command whose event was stored (its actor), and only it.
    winners = {todo[n][4]["user"] for n, r in enumerate(results) if r != "409"}
    assert {e[3] for e in batched_events[30:]} == winners
    # The sealer's memory holds every committed event once, in notification order.
    unsealed = recorder.unsealed.take(1, 1000)
    assert [n for n, *_ in unsealed] == list(range(1, 51))


def test_a_conflict_in_a_batch_rolls_back_only_that_command(service: IncidentService) -> None:
    ids = seed(service)
    recorder = recorder_of(service)
    outcomes: dict[str, str] = {}

    def act(name: str, incident: int, version: int) -> None:
        actor: Actor = {"user": name, "role": "admin", "center": None}
        try:
            service.act(ids[incident], "accept", actor=actor, expected_version=version)
            outcomes[name] = "ok"
        except VersionConflict as exc:
            outcomes[name] = str(exc)

    with recorder._commit_lock:
        threads = [threading.Thread(target=act, args=args)
                   for args in (("first", 0, 1), ("second", 0, 1), ("other", 1, 1))]
        for thread in threads:
            thread.start()
            # queue in this order
            deadline = time.monotonic() + 10
            while len(recorder._queued) < threads.index(thread) + 1:
                assert time.monotonic() < deadline
                time.sleep(0.005)
    for thread in threads:
        thread.join(10)
    assert outcomes["first"] == "ok" and outcomes["other"] == "ok"
    assert "changed by another command at the same time" in outcomes["second"]
    assert [e[0:3] for e in stored(service, ids)[30:]] == [(0, 2, "Accepted"), (1, 2, "Accepted")]


CRASH_MID_BATCH = r"""
import os, signal, sys, threading, time
from pathlib import Path
from domain.application import IncidentService
from infra.settings import Settings
from infra.store.sqlite_recorder import LinkageSQLiteRecorder

settings = Settings().with_(data_dir=Path(sys.argv[1]))
service = IncidentService(lambda grid: ["t1", "d1", "c"], env=settings.eventsourcing_env())
recorder = service.recorder
actor = {"user": "crash", "role": "admin", "center": None}
ids = [str(service.report(actor=actor, grid="g1", source="hotline", category="noise",
                          severity="routine", description="acknowledged").id) for _ in range(5)]
print(",".join(ids), flush=True)  # acknowledged: committed one at a time

inserted = 0
real = LinkageSQLiteRecorder._insert_events
def insert_then_die(self, c, events, **kw):
    global inserted
    ids = real(self, c, events, **kw)
    inserted += 1
    if inserted == 50:  # half of the batch is written inside its transaction: die now
        os.kill(os.getpid(), signal.SIGKILL)
    return ids
LinkageSQLiteRecorder._insert_events = insert_then_die

def report():
    service.report(actor=actor, grid="g1", source="hotline", category="noise",
                   severity="routine", description="in the batch")
with recorder._commit_lock:
    threads = [threading.Thread(target=report) for _ in range(100)]
    for t in threads:
        t.start()
    while len(recorder._queued) < 100:
        time.sleep(0.01)
for t in threads:
    t.join()
print("not killed", flush=True)
"""


def test_kill_9_mid_batch_leaves_no_half_batch_and_keeps_what_was_acknowledged(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "crash"
    process = subprocess.run([sys.executable, "-c", CRASH_MID_BATCH, str(data_dir)],
                             capture_output=True, text=True, timeout=120,
                             cwd=Path(__file__).resolve().parents[2],
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert process.returncode == -signal.SIGKILL, process.stderr
    acknowledged = process.stdout.split()[0].split(",")
    assert "not killed" not in process.stdout
    service = open_service(data_dir)
    try:
        rows = service.recorder.select_notifications(start=1, limit=1000)
        # The five acknowledged reports, and not one of the 100 in the killed batch (50 of
        # which were inserted in its transaction when the process died).
        assert [str(n.originator_id) for n in rows] == acknowledged
        service.report(actor=REPORTER, grid="g1", source="hotline", category="noise",
                       severity="routine", description="after the crash")
        assert service.recorder.max_notification_id() == 6
    finally:
        service.close()


def test_a_command_waits_for_the_other_process_turn_at_writing(tmp_path: Path) -> None:
    """With turns taken (infra/store/write_turn.py, as the server and the ingest writer take
    them), a command does not write while another holder has the turn, and commits once it is
    released. The holder here is a second turn on the same store, as the writer process's is."""
    from infra.store.write_turn import WriteTurn
    from tests.turns import order_behind_a_held_turn

    service = open_service(tmp_path)
    try:
        recorder = recorder_of(service)
        store = Path(Settings().with_(data_dir=tmp_path).sqlite_path)
        recorder.turn = WriteTurn(store)

        def report() -> None:
            service.report(actor=REPORTER, grid="g1", source="hotline", category="noise",
                           severity="routine", description="waits its turn")

        assert order_behind_a_held_turn(store, report) == ["released", "committed"]
        assert recorder.max_notification_id() == 1
    finally:
        service.close()


def test_a_blocking_caller_behind_more_than_one_batch_returns_only_once_committed(
        service: IncidentService, monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.store import group_commit

    monkeypatch.setattr(group_commit, "MAX_BATCH_EVENTS", 1)  # one caller's event per batch
    recorder = recorder_of(service)
    ahead = [service.new_report(actor=REPORTER, grid="g1", source="hotline", category="noise",
                                severity="routine", description=f"ahead {n}") for n in range(2)]
    reported: list[str] = []

    def report() -> None:
        incident = service.report(actor=REPORTER, grid="g1", source="hotline",
                                  category="noise", severity="routine", description="behind")
        reported.append(str(incident.id))

    with recorder._commit_lock:
        for incident in ahead:
            recorder._queued.append(group_commit.Part(
                [service.mapper.to_stored_event(e) for e in incident.collect_events()], {}))
        thread = threading.Thread(target=report)
        thread.start()
        deadline = time.monotonic() + 10
        while len(recorder._queued) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.005)
    thread.join(10)
    # It returned after the batch of its own event, the two ahead of it committed first.
    assert service.get(reported[0]).description == "behind"
    assert recorder.max_notification_id() == 3 and not recorder._queued
