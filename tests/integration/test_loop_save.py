"""Saving from the event loop (infra/store/loop_save.py): commands decided on the loop are
committed by the group commit's writer thread with the same outcome as one at a time, in one
transaction with blocking callers, and a request cancelled meanwhile still has its commit.

As in test_group_commit.py, the test holds the recorder's commit lock while every command queues
its events, so that they are committed by one transaction."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from domain.application import IncidentService, VersionConflict, changed_meanwhile
from domain.incident import Actor
from infra.store import group_commit
from infra.store.loop_save import LoopSaver
from tests.integration.test_group_commit import (
    INCIDENTS,
    PER_INCIDENT,
    REPORTER,
    commands,
    open_service,
    recorder_of,
    run,
    seed,
    stored,
)


def wait_until(condition: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


async def decide_and_save(service: IncidentService, saver: LoopSaver, ids: list[str],
                          command: tuple[int, str, int, dict[str, object], Actor]) -> str:
    i, action, version, params, actor = command
    try:
        incident = service.decide(ids[i], action, actor=actor, expected_version=version,
                                  **params)
        await saver(incident)
    except VersionConflict:
        return "409"
    return f"ok v{incident.version}"


def test_commands_saved_from_the_loop_give_the_events_and_409s_of_one_at_a_time(
        tmp_path: Path) -> None:
    service = open_service(tmp_path / "loop")
    saver = LoopSaver(service, changed_meanwhile)
    recorder = recorder_of(service)
    todo = commands()
    # Every third command runs the blocking way (a worker thread), the rest from the loop.
    blocking = set(range(0, len(todo), 3))
    results: list[str | None] = [None] * len(todo)
    try:
        ids = seed(service)

        async def one(n: int) -> None:
            results[n] = await decide_and_save(service, saver, ids, todo[n])

        async def main() -> None:
            await asyncio.gather(*(one(n) for n in range(len(todo)) if n not in blocking))

        def worker(n: int) -> None:
            results[n] = run(service, ids, todo[n])

        before = recorder.group_stats.batches
        with recorder._commit_lock:
            threads = [threading.Thread(target=worker, args=(n,)) for n in sorted(blocking)]
            for thread in threads:
                thread.start()
            loop_thread = threading.Thread(target=asyncio.run, args=(main(),))
            loop_thread.start()
            # Stale versions are refused before they queue (60 of 200); the others queue.
            wait_until(lambda: len(recorder._queued) == 140 and results.count("409") == 60)
        loop_thread.join(60)
        for thread in threads:
            thread.join(60)
        assert recorder.group_stats.batches == before + 1  # one transaction for all 140
        assert recorder.group_stats.largest == 140

        serial = open_service(tmp_path / "serial")
        try:
            serial_ids = seed(serial)
            serial_results = [run(serial, serial_ids, command) for command in todo]
            ours, theirs = stored(service, ids), stored(serial, serial_ids)
        finally:
            serial.close()
    finally:
        service.close()

    assert results.count("409") == serial_results.count("409") == 180
    assert sorted(r for r in results if r is not None and r != "409") == sorted(
        r for r in serial_results if r != "409") == ["ok v2"] * 10 + ["ok v3"] * 10
    assert [e[:3] for e in sorted(ours)] == [e[:3] for e in sorted(theirs)]
    assert len(ours) == INCIDENTS + INCIDENTS // 2 + INCIDENTS
    # Each success answered the command whose event was stored, and only it.
    winners = {todo[n][4]["user"] for n, r in enumerate(results) if r != "409"}
    assert {e[3] for e in ours[INCIDENTS + INCIDENTS // 2:]} == winners
    assert len(todo) == INCIDENTS * PER_INCIDENT


def test_a_request_cancelled_while_its_commit_is_queued_is_still_committed(
        tmp_path: Path) -> None:
    service = open_service(tmp_path / "cancel")
    saver = LoopSaver(service, changed_meanwhile)
    recorder = recorder_of(service)
    try:
        async def main() -> str:
            incident = service.new_report(actor=REPORTER, grid="g1", source="hotline",
                                          category="noise", severity="routine",
                                          description="cancelled")
            task = asyncio.ensure_future(saver(incident))
            await asyncio.sleep(0)  # it queued its events
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return str(incident.id)

        with recorder._commit_lock:
            incident_id = asyncio.run(main())
            assert len(recorder._queued) == 1
        wait_until(lambda: not recorder._queued and recorder.max_notification_id() == 1)
        assert service.get(incident_id).description == "cancelled"
    finally:
        service.close()


def test_the_writer_thread_ends_when_idle_and_comes_back(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_commit, "WRITER_IDLE_SECONDS", 0.05)
    service = open_service(tmp_path / "idle")
    saver = LoopSaver(service, changed_meanwhile)
    recorder = recorder_of(service)

    async def report(n: int) -> int:
        incident = service.new_report(actor=REPORTER, grid="g1", source="hotline",
                                      category="noise", severity="routine",
                                      description=f"incident {n}")
        await saver(incident)
        return incident.version

    try:
        assert asyncio.run(report(1)) == 1
        wait_until(lambda: recorder._writer is None, 5)
        assert asyncio.run(report(2)) == 1  # a new writer thread committed it
        assert recorder.max_notification_id() == 2
    finally:
        service.close()


def test_saving_from_the_loop_needs_a_group_commit_recorder(tmp_path: Path) -> None:
    service = IncidentService(lambda grid: ["t1"], env={"PERSISTENCE_MODULE":
                                                        "eventsourcing.popo"})
    with pytest.raises(TypeError, match="group-commit recorder"):
        LoopSaver(service)
