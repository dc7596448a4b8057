"""Every commit wakes the embedded runner through the recorder's after-commit hook
(infra/store/commits.py), with no `wake()` call at the call sites: one contract, run on
SQLite and on PostgreSQL as `linkage serve` configures them, plus the ingest writer process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.application import IncidentService
from domain.incident import Actor, Incident
from infra.bootstrap import commit_signal, notification_reader
from infra.runner.embedded import EmbeddedRunner
from infra.settings import Settings
from infra.store.view_store import MemoryViewStore
from tests.conftest import start_server
from tests.e2e.alerting import alert, post_alerts
from tests.integration.distributed import wait_until

CENTERS = ["t1", "d1", "c"]
ACTOR: Actor = {"user": "signal", "role": "admin", "center": None}
# Far beyond the liveness wait below: a view that changes in time was woken, not polled.
NEVER = 3600.0


def report(service: IncidentService) -> str:
    incident = service.report(actor=ACTOR, grid="g1", source="hotline", category="noise",
                              severity="routine", description="noise at night")
    return str(incident.id)


def follow(runner: EmbeddedRunner) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete,
                              args=(runner.run(poll_interval=NEVER),), daemon=True)
    thread.start()
    # Once a coroutine has run there, the runner's first step has too: it waits for a wake.
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(timeout=10)
    return loop, thread


def stop(runner: EmbeddedRunner, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(runner.stop)
    thread.join(10)
    loop.close()


class CommitSignalContract:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        raise NotImplementedError

    @pytest.fixture
    def service(self, settings: Settings) -> Iterator[IncidentService]:
        service = IncidentService(lambda grid: CENTERS, env=settings.eventsourcing_env())
        yield service
        service.close()

    def test_a_command_saved_through_the_service_reaches_the_runner_without_an_explicit_wake(
        self, service: IncidentService
    ) -> None:
        runner = EmbeddedRunner(notification_reader(service), MemoryViewStore(), CENTERS)
        commit_signal(service).after_commit(runner.wake)
        loop, thread = follow(runner)
        try:
            incident_id = report(service)
            wait_until(lambda: incident_id in runner.view("c")["queue"], 30,
                       what="the reported incident in the city view")
            service.act(incident_id, "accept", actor=ACTOR)
            wait_until(lambda: runner.view("t1")["queue"][incident_id]["status"] == "accepted", 30,
                       what="the accepted status in the township view")
        finally:
            stop(runner, loop, thread)

    def test_every_write_path_signals_its_commit_once(self, service: IncidentService) -> None:
        signals: list[int] = []
        commit_signal(service).after_commit(lambda: signals.append(1))
        incident_id = report(service)  # Application.save
        assert len(signals) == 1
        service.act(incident_id, "accept", actor=ACTOR)
        assert len(signals) == 2
        other = Incident.report(source="hotline", category="noise", severity="routine",
                                grid="g1", centers=CENTERS, description="d", actor=ACTOR)
        service.events.put(other.collect_events())  # the event store, as storm acknowledgement
        assert len(signals) == 3
        third = Incident.report(source="hotline", category="noise", severity="routine",
                                grid="g1", centers=CENTERS, description="d", actor=ACTOR)
        # the recorder itself, as the alert ingest's batch insert
        service.recorder.insert_events(
            [service.mapper.to_stored_event(e) for e in third.collect_events()])
        assert len(signals) == 4

    def test_a_failing_callback_neither_fails_the_commit_nor_silences_the_others(
        self, service: IncidentService
    ) -> None:
        signals: list[int] = []

        def broken() -> None:
            raise RuntimeError("a listener bug")

        commits = commit_signal(service)
        commits.after_commit(broken)
        commits.after_commit(lambda: signals.append(1))
        incident_id = report(service)
        assert service.get(incident_id).version == 1
        assert signals == [1]


class TestCommitSignalOnSQLite(CommitSignalContract):
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings().with_(data_dir=tmp_path)


@pytest.mark.integration
class TestCommitSignalOnPostgres(CommitSignalContract):
    @pytest.fixture
    def settings(self, tmp_path: Path, postgres_dsn: str, pg_schema: str) -> Settings:
        return Settings().with_(data_dir=tmp_path, store="postgres", postgres_dsn=postgres_dsn,
                                postgres_schema=pg_schema)


def test_a_recorder_without_the_hook_is_refused_by_the_composition_root() -> None:
    service = IncidentService(lambda grid: CENTERS, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    with pytest.raises(TypeError, match="does not signal commits"):
        commit_signal(service)


@pytest.mark.e2e
def test_a_batch_the_writer_process_commits_is_signalled_in_the_server(tmp_path: Path) -> None:
    """The writer process commits in its own process: the server signals it when it answers."""
    server = start_server(tmp_path / "data", ingest_process=True)
    try:
        signalled = threading.Event()
        commit_signal(server.embedded.service).after_commit(signalled.set)  # type: ignore[attr-defined]
        response = post_alerts(server, [alert("signal-1")])
        assert response.status_code == 200, response.text
        assert response.json()["created"] == 1
        # Signalled before the answer: nothing else in this process committed meanwhile (a feed's
        # requests are not audited).
        assert signalled.is_set(), "the writer's commit was not signalled in the server"
    finally:
        server.stop()
