"""One contract for the outbound store (infra/outbound/store.py), run on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.outbound.store import OutboundStore
from infra.outbound.subscriptions import Subscription
from infra.store.sqldb import Database

pytestmark = pytest.mark.integration


def row(n: int, subscription: str = "a") -> tuple[str, int, str, str, bytes]:
    return (subscription, n, f"inc-{n}", "application/json", b'{"n": %d}' % n)


class OutboundStoreContract:
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[OutboundStore]:
        raise NotImplementedError

    def test_a_scan_recorded_twice_adds_each_delivery_once(self, store: OutboundStore) -> None:
        assert store.position("outbound") is None
        assert store.record_scan("outbound", 3, [row(1), row(2), row(2, "b")]) == 3
        assert store.record_scan("outbound", 3, [row(1), row(2)]) == 0  # a restart's rescan
        assert store.position("outbound") == 3
        assert [d.notification_id for d in store.next_pending("a", 10)] == [1, 2]
        assert store.next_pending("a")[0].body == b'{"n": 1}'

    def test_deliveries_go_in_order_retry_and_die(self, store: OutboundStore) -> None:
        store.record_scan("outbound", 4, [row(1), row(2), row(3)])
        [first] = store.next_pending("a")
        assert first.key == "a:1"
        later = time.time() + 3600.25
        store.failed(first, "HTTP 503", later)
        [again] = store.next_pending("a")
        assert (again.notification_id, again.attempts) == (1, 1)
        assert abs(again.next_at - later) < 0.01  # kept to the sub-second
        store.failed(again, "HTTP 503", None)  # out of attempts: a dead letter
        store.delivered(store.next_pending("a", 1))
        assert [d.notification_id for d in store.next_pending("a", 10)] == [3]
        [tally] = store.tallies()
        assert (tally.pending, tally.delivered, tally.dead) == (1, 1, 1)
        assert tally.last_error == "HTTP 503"
        assert store.dead_letters("a") == [("a", 1, "inc-1", 2, "HTTP 503")]
        assert store.retry_dead("a") == 1
        assert [d.notification_id for d in store.next_pending("a", 10)] == [1, 3]

    def test_prune_forgets_only_old_deliveries(self, store: OutboundStore) -> None:
        store.record_scan("outbound", 2, [row(1), row(2)])
        store.delivered(store.next_pending("a", 1))
        assert store.prune(time.time() - 60) == 0
        assert store.prune(time.time() + 60) == 1
        assert [d.notification_id for d in store.next_pending("a", 10)] == [2]

    def test_subscriptions_added_once_listed_and_removed(self, store: OutboundStore) -> None:
        sub = Subscription(name="ops", url="http://h/", events=["rule_fired"], secret="s" * 16)
        assert store.add(sub) and not store.add(sub)
        assert store.subscriptions() == [sub]
        assert store.remove("ops") and not store.remove("ops")
        assert store.subscriptions() == []


class TestSQLiteOutboundStore(OutboundStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[OutboundStore]:
        yield OutboundStore(Database("sqlite", sqlite_path=tmp_path / "outbound.db"))


class TestPostgresOutboundStore(OutboundStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path, postgres_dsn: str, pg_schema: str
              ) -> Iterator[OutboundStore]:
        yield OutboundStore(Database("postgres", dsn=postgres_dsn, schema=pg_schema))
