"""Readers that never take alerts they do not fold (issue #17, target 2): the step-4 ledger reads
only incident and supervision-order events, and the outbound deliverer only the event types its
subscriptions' kinds come from. A burst of camera alerts then costs neither of them a read or a
decode, and their results are the same as when they read every event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from command_center.ledger import Ledger
from infra.bootstrap import ledger_reader, type_reader
from infra.outbound.deliverer import Deliverer
from infra.outbound.store import OutboundStore
from infra.outbound.subscriptions import Subscription
from infra.store.sqldb import Database
from projections.assessment import DEFAULT_WEIGHTS, rows
from projections.envelope import SKIP, Envelope, from_stored
from tests.conftest import RunningServer, start_server
from tests.e2e.alerting import START, alert, post_alerts, stored_events

pytestmark = pytest.mark.e2e

GRID = "130706001001001"
TOWNSHIP = "130706001"


def every_event(service: Any) -> Any:
    def read(after: int, limit: int) -> list[Envelope]:
        return [from_stored(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                for n in service.recorder.select_notifications(start=after + 1, limit=limit)]
    return read


def report(server: RunningServer, severity: str = "routine") -> str:
    import httpx

    response = httpx.post(f"{server.url}/api/incidents", headers=server.headers, timeout=10,
                          json={"source": "hotline", "category": "noise", "grid": GRID,
                                "severity": severity, "description": "noise at night"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def alerts(server: RunningServer, prefix: str, n: int) -> None:
    response = post_alerts(server, [alert(f"{prefix}{i}", start_time=START + i) for i in range(n)])
    assert response.status_code == 200, response.text


def test_the_ledger_reads_no_alert_and_folds_what_every_event_gives(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        alerts(server, "a", 30)
        report(server)
        alerts(server, "b", 30)
        report(server, severity="major")
        service = server.embedded.service
        head = stored_events(server)
        events = ledger_reader(service)(0, 10_000)
        types = [e.type for e in events]
        assert types[-1] == SKIP and events[-1].notification_id == head
        assert types.count("Incident.Reported") == 2
        assert all(t.split(".")[0] in ("Incident", "SupervisionOrder") for t in types[:-1])
        assert len(events) < head - 60  # the 60 alerts' events were not returned
        # A batch limit shorter than what there is: no marker, the next read goes on from it.
        assert [e.type for e in ledger_reader(service)(0, 1)] == ["Incident.Reported"]

        filtered, full = Ledger(ledger_reader(service)), Ledger(every_event(service))
        assert filtered.catch_up() == len(events) - 1  # markers are not events
        full.catch_up()
        assert filtered.position == full.position == head
        day = datetime.now(UTC).astimezone(full.assessment.offset).date()
        units = [(TOWNSHIP, "township")]
        assert rows(filtered.assessment, units, "day", day, day, DEFAULT_WEIGHTS) == \
            rows(full.assessment, units, "day", day, day, DEFAULT_WEIGHTS)
        assert rows(full.assessment, units, "day", day, day, DEFAULT_WEIGHTS)[0]["intake"] == 2
        assert filtered.catch_up() == 0
    finally:
        server.stop()


def test_the_deliverer_reads_only_the_types_its_subscriptions_want(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        service = server.embedded.service
        typed = type_reader(service)
        asked: list[set[str]] = []

        def read(after: int, limit: int, types: Any) -> list[Envelope]:
            asked.append(set(types))
            return typed(after, limit, types)

        def head() -> int:
            return stored_events(server)

        store = OutboundStore(Database("sqlite", sqlite_path=tmp_path / "outbound.db"))
        deliverer = Deliverer(store, read, lambda: [], sender="test", head=head)
        assert deliverer.scan([]) == 0  # the first scan starts at the head
        alerts(server, "a", 40)
        report(server)
        # Nobody subscribed: the position follows the head, nothing is read.
        assert deliverer.scan([]) == 0
        assert asked == [] and store.position("outbound") == head()

        majors = Subscription(name="majors", url="http://127.0.0.1:9/", secret="s" * 16,
                              events=["major_reported", "escalated_city"])
        report(server, severity="major")
        alerts(server, "b", 40)
        assert deliverer.scan([majors]) > 0
        assert asked == [{"Incident.Reported", "Incident.Escalated"}]
        assert store.position("outbound") == head()
        assert [t.pending for t in store.tallies()] == [1]  # the major case, and only it

        storms = Subscription(name="storms", url="http://127.0.0.1:9/", secret="s" * 16,
                              events=["storm_started"])
        alerts(server, "c", 12)  # 12 alerts of one camera within one 10 s window: a storm
        deliverer.scan([storms])
        assert asked[-1] == {"CameraAlert.Raised"}
        assert store.position("outbound") == head()
        assert {t.subscription: t.pending for t in store.tallies()} == {"majors": 1, "storms": 1}
        with pytest.raises(KeyError):
            typed(0, 10, {"CameraAlert.NoSuchEvent"})
    finally:
        server.stop()
