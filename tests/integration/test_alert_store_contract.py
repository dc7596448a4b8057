"""Alert ingest on every AlertStore adapter and event store: bulk id lookup, group commit,
idempotency, errors, and what officers and later batches see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.alert_decision import AlertDecider
from domain.alert_rules import parse_rules
from domain.alert_service import AlertService
from domain.alert_store import AlertStore
from domain.application import IncidentService
from domain.camera_alert import CameraAlert, Observation, alert_id, window_start
from domain.incident import Actor, InvalidCommand
from infra.bootstrap import notification_reader
from infra.ingest.alert_store import RecorderAlertStore
from infra.ingest.stored_alerts import RecorderAlerts
from infra.ingest.writer import WriterProcess
from infra.settings import Settings
from infra.store.sqlite_recorder import LinkageSQLiteRecorder
from projections.envelope import from_state, from_stored

FEED: Actor = {"user": "feed", "role": "feed", "center": None}
OFFICER: Actor = {"user": "duty", "role": "city_officer", "center": None}
CENTERS = ("town", "district", "city")
RULES = {"rules": [{"name": "fire", "labels": ["fire"], "min_score": 0.8,
                    "action": "open_incident", "severity": "major"}]}


def obs(event_id: str, **fields: object) -> Observation:
    values: dict = {"camera": "cam-1", "label": "person", "score": 0.6,  # type: ignore[type-arg]
                    "start_time": 1_800_000_000.0}
    values.update(fields)
    return Observation(feed_event_id=event_id, **values)


class AlertStoreContract:
    """The same contract for every AlertStore adapter, each on its event store."""

    @pytest.fixture
    def env(self, tmp_path: Path) -> dict[str, str]:
        raise NotImplementedError

    @pytest.fixture
    def store(self, incidents: IncidentService) -> Iterator[AlertStore]:
        yield RecorderAlertStore(incidents, AlertDecider(parse_rules(RULES)))

    @pytest.fixture
    def incidents(self, env: dict[str, str]) -> Iterator[IncidentService]:
        service = IncidentService(lambda grid: CENTERS, env=env)
        yield service
        service.close()

    @pytest.fixture
    def alerts(self, incidents: IncidentService, store: AlertStore) -> AlertService:
        return AlertService(incidents, store, RecorderAlerts(incidents), lambda camera: "grid-1",
                            lambda grid: CENTERS)

    def test_bulk_lookup_finds_exactly_the_stored_alerts(self, alerts: AlertService) -> None:
        alerts.ingest("feed", [obs(f"e{i}") for i in range(700)], FEED)  # > one SQLite chunk
        wanted = {alert_id("feed", f"e{i}") for i in range(650, 750)}
        found = alerts.stored.existing(wanted)
        assert found == {alert_id("feed", f"e{i}") for i in range(650, 700)}

    def test_a_batch_is_one_transaction_and_a_retry_stores_nothing(self, alerts: AlertService) -> None:
        batch = [obs("a"), obs("b"), obs("a", phase="update", score=0.7),
                 obs("f", label="fire", score=0.9)]
        outcomes = alerts.ingest("feed", batch, FEED)
        assert [o.status for o in outcomes] == ["created", "created", "updated", "created"]
        assert outcomes[3].incident is not None
        recorder = alerts.incidents.recorder
        before = recorder.max_notification_id()
        kinds = [n.topic.rsplit(":", 1)[-1] for n in recorder.select_notifications(start=1, limit=50)]
        assert kinds[:4] == ["CameraAlert.Raised", "CameraAlert.Raised", "CameraAlert.Updated",
                             "CameraAlert.Raised"]
        assert kinds[4] == "Incident.Reported" and kinds[-1] == "CameraAlert.RuleFired"
        again = alerts.ingest("feed", batch, FEED)
        assert [o.status for o in again] == ["duplicate"] * 4
        assert recorder.max_notification_id() == before
        assert alerts.get(outcomes[0].alert).score == 0.7

    def test_an_invalid_observation_refuses_the_whole_batch_with_its_domain_error(
            self, alerts: AlertService) -> None:
        with pytest.raises(InvalidCommand, match="alert kind must be one of camera, sensor, cap; "
                                                 "got 'drone'"):
            alerts.ingest("feed", [obs("fine"), obs("odd", kind="drone")], FEED)
        assert alerts.incidents.recorder.max_notification_id() in (None, 0)
        assert [o.status for o in alerts.ingest("feed", [obs("fine")], FEED)] == ["created"]

    def test_officers_act_on_stored_alerts_and_later_batches_see_it(
            self, alerts: AlertService) -> None:
        first = alerts.ingest("feed", [obs("x"), obs("y")], FEED)
        assert alerts.act(first[0].alert, "acknowledge", actor=OFFICER)["disposition"] == "acknowledged"
        later = alerts.ingest("feed", [obs("x", phase="end", end_time=1_800_000_060.0)], FEED)
        assert [o.status for o in later] == ["ended"]
        alert = alerts.get(first[0].alert)
        assert (alert.disposition, alert.ended, alert.version) == ("acknowledged", True, 3)

    def test_a_storm_window_is_found_by_the_raised_events_in_order(
            self, alerts: AlertService) -> None:
        start = 1_800_000_000.0
        alerts.ingest("feed", [obs(f"s{i}", start_time=start + i) for i in range(5)]
                      + [obs("later", start_time=start + 3600),
                         obs("other", camera="cam-2", start_time=start + 1)], FEED)
        window = window_start(start, 60)
        count = alerts.acknowledge_storm(kind="camera", ident="cam-1", size=60, start=window,
                                         from_notification=1, actor=OFFICER)
        assert count == 5
        assert alerts.get(str(alert_id("feed", "s0"))).disposition == "acknowledged"
        assert alerts.get(str(alert_id("feed", "later"))).disposition == "new"
        assert alerts.get(str(alert_id("feed", "other"))).disposition == "new"


class TestAlertStoreOnSQLite(AlertStoreContract):
    """As `linkage serve` configures SQLite (its own recorder class included)."""

    @pytest.fixture
    def env(self, tmp_path: Path) -> dict[str, str]:
        return Settings().with_(data_dir=tmp_path).eventsourcing_env()


class TestAlertStoreOnPlainSQLite(AlertStoreContract):
    @pytest.fixture
    def env(self, tmp_path: Path) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(tmp_path / "events.db"), "SQLITE_LOCK_TIMEOUT": "10"}


@pytest.mark.integration
class TestAlertStoreOnPostgres(AlertStoreContract):
    @pytest.fixture
    def env(self, pg_schema: str) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": "test",
                "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432",
                "POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "",
                "POSTGRES_SCHEMA": pg_schema}


class WriterProcessContract(AlertStoreContract):
    """The ingest writer process as the store: batches are decided and committed there."""

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        raise NotImplementedError

    @pytest.fixture
    def env(self, settings: Settings) -> dict[str, str]:
        return settings.eventsourcing_env()

    @pytest.fixture
    def store(self, settings: Settings) -> Iterator[AlertStore]:
        writer = WriterProcess(settings, rules=parse_rules(RULES))
        yield writer
        writer.close()


class TestAlertStoreInWriterProcessOnSQLite(WriterProcessContract):
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings().with_(data_dir=tmp_path)


@pytest.mark.integration
class TestAlertStoreInWriterProcessOnPostgres(WriterProcessContract):
    @pytest.fixture
    def settings(self, tmp_path: Path, postgres_dsn: str, pg_schema: str) -> Settings:
        return Settings().with_(data_dir=tmp_path, store="postgres", postgres_dsn=postgres_dsn,
                                postgres_schema=pg_schema)


@pytest.fixture
def lean(tmp_path: Path) -> Iterator[tuple[IncidentService, LinkageSQLiteRecorder, AlertService]]:
    """Alerts on SQLite as `linkage serve` configures it (LinkageSQLiteRecorder)."""
    incidents = IncidentService(lambda grid: CENTERS,
                                env=Settings().with_(data_dir=tmp_path).eventsourcing_env())
    recorder = incidents.recorder
    assert isinstance(recorder, LinkageSQLiteRecorder)
    store = RecorderAlertStore(incidents, AlertDecider(parse_rules(RULES)))
    yield incidents, recorder, AlertService(incidents, store, store.stored,
                                            lambda camera: "grid-1", lambda grid: CENTERS)
    incidents.close()


def test_the_runner_takes_from_memory_what_it_would_read_from_the_table(
    lean: tuple[IncidentService, LinkageSQLiteRecorder, AlertService]
) -> None:
    """The lean SQLite recorder remembers fast-path alerts it stored; what the projection runner
    takes from there equals what it would read and decode, and the rest comes from the table."""
    incidents, recorder, alerts = lean
    batch = [obs("a"), obs("b", zones=("gate",), details={"k": [1, "x"]}),
             obs("a", phase="update", score=0.7),  # an Updated: not remembered
             obs("f", label="fire", score=0.9),  # a rule fires: the incident too, not remembered
             obs("c", details={"bad": float("nan")})]  # would not decode equal: not remembered
    alerts.ingest("feed", batch, FEED)
    rows = recorder.select_notification_rows(1, 100)
    remembered = {n: (oid, version, topic, dict(state))
                  for n, oid, version, topic, state in recorder.known.take(1, 100)}
    assert set(remembered) == {1, 2}  # the two plain Raised at the head; 3 is an Updated
    for n, *rest in rows:
        if n in remembered:
            assert from_state(n, *remembered[n]) == from_stored(n, *rest)
    assert recorder.known.take(1, 100) == []  # taken once
    read = notification_reader(incidents)
    envelopes = read(0, 100)  # nothing remembered at 1 any more: the table
    assert [e.notification_id for e in envelopes] == [r[0] for r in rows]
    alerts.ingest("feed", [obs("d"), obs("e")], FEED)
    last = rows[-1][0]
    assert read(last, 100) == [from_stored(*r) for r in recorder.select_notification_rows(last + 1, 100)]


def test_states_remembered_after_the_runner_read_them_are_swept(
    lean: tuple[IncidentService, LinkageSQLiteRecorder, AlertService]
) -> None:
    _incidents, recorder, alerts = lean
    alerts.ingest("feed", [obs(f"s{i}") for i in range(50)], FEED)
    recorder.known.take(1, 50)
    # As if the runner had read 1..50 from the table just before they were remembered:
    recorder.known.put([(n, ("x", 1, "t", {})) for n in range(1, 51)])
    alerts.ingest("feed", [obs(f"t{i}") for i in range(10)], FEED)
    taken = recorder.known.take(51, 10)
    assert [t[0] for t in taken] == list(range(51, 61))
    assert len(recorder.known) == 0  # the stale 1..50 went with it


def test_a_batch_insert_returns_the_notification_ids_the_table_gives(
    lean: tuple[IncidentService, LinkageSQLiteRecorder, AlertService]
) -> None:
    """LinkageSQLiteRecorder inserts a batch with one executemany and derives its ids."""
    incidents, recorder, alerts = lean
    alerts.ingest("feed", [obs("one")], FEED)  # a batch of one: the library's own insert
    events = [CameraAlert.raise_(obs(f"b{i}"), feed="feed", grid="grid-1", centers=list(CENTERS),
                                 actor=FEED) for i in range(7)]
    stored = [incidents.mapper.to_stored_event(e) for a in events for e in a.collect_events()]
    ids = recorder.insert_events(stored)
    rows = recorder.select_notification_rows(1, 100)
    assert list(ids or []) == [r[0] for r in rows[1:]] == list(range(2, 9))
    assert [r[1] for r in rows[1:]] == [str(s.originator_id) for s in stored]
