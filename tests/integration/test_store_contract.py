"""One contract, every adapter: the event store (IncidentService persistence) and the view store.

Written once as abstract test classes and run against SQLite and PostgreSQL
(and memory for the view store), like eventsourcing's own persistence tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.application import IncidentService, NotFound, VersionConflict
from domain.incident import Actor
from infra.bootstrap import notification_reader
from infra.settings import Settings
from infra.store.view_store import MemoryViewStore, PostgresViewStore, SQLiteViewStore, ViewStore
from projections.envelope import from_stored
from projections.patch import set_

GRIDS = {"g1": ["t1", "d1", "c"], "g2": ["t2", "d1", "c"]}
ACTOR: Actor = {"user": "contract", "role": "admin", "center": None}


def report(service: IncidentService, grid: str = "g1") -> str:
    incident = service.report(actor=ACTOR, grid=grid, source="hotline", category="noise",
                              severity="routine", description="noise at night", location=None,
                              reporter={"name": "张三", "phone": "13800000000"})
    return str(incident.id)


class EventStoreContract:
    @pytest.fixture
    def env(self, tmp_path: Path) -> dict[str, str]:
        raise NotImplementedError

    @pytest.fixture
    def service(self, env: dict[str, str]) -> Iterator[IncidentService]:
        service = IncidentService(lambda grid: GRIDS[grid], env=env)
        yield service
        service.close()

    def test_a_saved_incident_reads_back_with_its_timeline(self, service: IncidentService) -> None:
        incident_id = report(service)
        service.act(incident_id, "accept", actor=ACTOR)
        loaded = service.get(incident_id)
        assert loaded.status == "accepted"
        assert loaded.reporter == {"name": "张三", "phone": "13800000000"}
        timeline = service.timeline(incident_id)
        assert [e["type"] for e in timeline] == ["Reported", "Accepted"]
        assert timeline[1]["actor"] == ACTOR

    def test_the_notification_log_numbers_every_event_in_order(self, service: IncidentService) -> None:
        first = report(service)
        second = report(service, "g2")
        service.act(first, "accept", actor=ACTOR)
        envelopes = notification_reader(service)(0, 100)
        assert [e.type for e in envelopes] == ["Incident.Reported", "Incident.Reported",
                                               "Incident.Accepted"]
        assert [e.originator_id for e in envelopes] == [first, second, first]
        ids = [e.notification_id for e in envelopes]
        assert ids == sorted(ids) and len(set(ids)) == 3
        assert envelopes[0].centers == ["t1", "d1", "c"]
        assert notification_reader(service)(ids[1], 100)[0].notification_id == ids[2]

    def test_the_reader_gives_what_the_library_reads(self, service: IncidentService) -> None:
        first = report(service)
        report(service, "g2")
        service.act(first, "accept", actor=ACTOR)
        library = [from_stored(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                   for n in service.recorder.select_notifications(start=2, limit=100)]
        assert notification_reader(service)(1, 100) == library
        assert len(library) == 2 and library[0].data["reporter"]["name"] == "张三"

    def test_a_stale_expected_version_is_a_conflict(self, service: IncidentService) -> None:
        incident_id = report(service)
        service.act(incident_id, "accept", actor=ACTOR, expected_version=1)
        with pytest.raises(VersionConflict, match="version 2"):
            service.act(incident_id, "reject", actor=ACTOR, reason="x", expected_version=1)

    def test_two_writers_of_the_same_version_one_wins_one_conflicts(
        self, service: IncidentService
    ) -> None:
        incident_id = report(service)
        a = service.get(incident_id)
        b = service.get(incident_id)
        a.accept(actor=ACTOR)
        b.reject(actor=ACTOR, reason="dup")
        service.save(a)
        from eventsourcing.persistence import IntegrityError

        with pytest.raises(IntegrityError):
            service.save(b)
        assert service.get(incident_id).status == "accepted"

    def test_concurrent_commands_never_lose_or_duplicate_an_event(
        self, service: IncidentService
    ) -> None:
        ids = [report(service) for _ in range(4)]
        errors: list[BaseException] = []

        def work(incident_id: str) -> None:
            try:
                service.act(incident_id, "accept", actor=ACTOR)
                service.act(incident_id, "dispatch", actor=ACTOR,
                            assignee={"kind": "department", "id": "d"},
                            due="2026-12-01T00:00:00+00:00")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        envelopes = notification_reader(service)(0, 1000)
        assert len(envelopes) == 4 * 3
        assert len({e.notification_id for e in envelopes}) == 12

    def test_an_unknown_incident_is_not_found(self, service: IncidentService) -> None:
        with pytest.raises(NotFound):
            service.get("8d3e6f5a-0000-4000-8000-000000000000")
        with pytest.raises(NotFound, match="UUID"):
            service.get("not-a-uuid")


class TestEventStoreOnSQLite(EventStoreContract):
    """As `linkage serve` configures it: with the lean notification reader."""

    @pytest.fixture
    def env(self, tmp_path: Path) -> dict[str, str]:
        env = Settings().with_(data_dir=tmp_path).eventsourcing_env()
        assert env["APPLICATION_RECORDER_TOPIC"].endswith(":LinkageSQLiteRecorder")
        return env


class TestEventStoreOnPlainSQLite(EventStoreContract):
    """eventsourcing's own SQLite recorder (the reader falls back to select_notifications)."""

    @pytest.fixture
    def env(self, tmp_path: Path) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(tmp_path / "events.db"), "SQLITE_LOCK_TIMEOUT": "10"}


@pytest.mark.integration
class TestEventStoreOnPostgres(EventStoreContract):
    @pytest.fixture
    def env(self, pg_schema: str) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": "test",
                "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432",
                "POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "",
                "POSTGRES_SCHEMA": pg_schema}


class ViewStoreContract:
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ViewStore]:
        raise NotImplementedError

    def test_a_new_store_has_an_epoch_and_position_zero(self, store: ViewStore) -> None:
        loaded = store.load()
        assert loaded.epoch
        assert loaded.position == 0
        assert loaded.views == {}
        assert store.load().epoch == loaded.epoch

    def test_committed_deltas_and_position_load_back(self, store: ViewStore) -> None:
        store.commit(3, [("c", 1, [set_(["counts", "reported"], 1)]),
                         ("c", 2, [set_(["counts", "reported"], 2)])])
        loaded = store.load()
        assert loaded.position == 3
        assert loaded.deltas["c"] == [(1, [set_(["counts", "reported"], 1)]),
                                      (2, [set_(["counts", "reported"], 2)])]
        assert store.deltas_after("c", 1, 10) == [(2, [set_(["counts", "reported"], 2)])]

    def test_a_checkpoint_keeps_the_view_and_recent_deltas(self, store: ViewStore) -> None:
        view: dict[str, Any] = {"center": "c", "counts": {"reported": 2}, "名": "视图"}
        store.commit(5, [("c", 1, []), ("c", 2, [])], {"c": (2, view)})
        loaded = store.load()
        assert loaded.views["c"] == (2, view)
        assert loaded.position == 5

    def test_reset_starts_a_new_epoch_with_nothing(self, store: ViewStore) -> None:
        store.commit(9, [("c", 1, [])], {"c": (1, {"center": "c"})})
        old = store.load().epoch
        new = store.reset()
        loaded = store.load()
        assert new != old and loaded.epoch == new
        assert loaded.position == 0 and loaded.views == {} and loaded.deltas == {}

    def test_old_deltas_are_trimmed_past_the_history_kept(self, store: ViewStore) -> None:
        keep = 1000
        store.commit(1, [("c", s, []) for s in range(1, keep + 11)], {"c": (keep + 10, {})})
        remaining = store.deltas_after("c", 0, 5000)
        assert remaining[0][0] == 11
        assert len(remaining) == keep


class TestMemoryViewStore(ViewStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ViewStore]:
        yield MemoryViewStore()


class TestSQLiteViewStore(ViewStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ViewStore]:
        store = SQLiteViewStore(tmp_path / "views.db")
        yield store
        store.close()


@pytest.mark.integration
class TestPostgresViewStore(ViewStoreContract):
    @pytest.fixture
    def store(self, postgres_dsn: str, pg_schema: str) -> Iterator[ViewStore]:
        store = PostgresViewStore(f"{postgres_dsn}?options=-csearch_path%3D{pg_schema}")
        yield store
        store.close()
