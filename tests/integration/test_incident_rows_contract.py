"""One contract for the per-incident read model, run against every adapter: the view stores of
embedded mode (memory, SQLite, PostgreSQL) and the PostgreSQL table of distributed mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from command_center.incident_query import IncidentQuery
from infra.store.incident_rows import PostgresIncidentRows
from infra.store.view_store import MemoryViewStore, PostgresViewStore, SQLiteViewStore
from projections.cases import urgency

Write = Callable[[list[dict[str, Any]]], None]
NOW = "2026-11-27T12:00:00.000000Z"


def record(n: int, **fields: Any) -> dict[str, Any]:
    town = "t1" if n % 2 else "t2"
    case = {"id": f"id-{n:03d}", "centers": [town, "d1", "c"], "grid": f"g-{town}",
            "status": "reported", "severity": "routine", "category": "noise",
            "source": "hotline", "assignee": None, "due": None,
            "reported_at": f"2026-11-27T08:{n % 60:02d}:00+00:00",
            "updated_at": f"2026-11-27T08:{n % 60:02d}:00+00:00", "summary": f"案件 {n}",
            "version": 1, "escalations": 0, "escalated_to": None, "supervised_by": None,
            **fields}
    case["urgency"] = urgency(case)
    return case


class IncidentRowsContract:
    @pytest.fixture
    def adapter(self, tmp_path: Path) -> Iterator[tuple[Any, Write]]:
        raise NotImplementedError

    def test_rows_never_go_back_a_version(self, adapter: tuple[Any, Write]) -> None:
        rows, write = adapter
        write([record(1, version=3, status="dispatched")])
        write([record(1, version=2, status="accepted"), record(1, version=1)])
        [found] = rows.incidents(IncidentQuery(center="c", depth=1))
        assert (found["status"], found["version"]) == ("dispatched", 3)
        assert found["centers"] == ["t1", "d1", "c"] and found["summary"] == "案件 1"

    def test_pages_list_every_incident_once_in_urgency_order(
            self, adapter: tuple[Any, Write]) -> None:
        rows, write = adapter
        write([record(n, severity="major" if n % 7 == 0 else "routine") for n in range(1, 41)])
        query = IncidentQuery(center="c", depth=1, limit=6)
        seen: list[dict[str, Any]] = []
        while True:
            page = rows.incidents(query)
            seen += page
            if len(page) < query.limit:
                break
            query = replace(query, after=(page[-1]["urgency"], page[-1]["id"]))
        assert len(seen) == 40 and len({r["id"] for r in seen}) == 40
        assert seen == sorted(seen, key=lambda r: (r["urgency"], r["id"]))
        assert {r["id"] for r in seen[:5]} == {f"id-{n:03d}" for n in (7, 14, 21, 28, 35)}

    def test_filters_narrow_the_list(self, adapter: tuple[Any, Write]) -> None:
        rows, write = adapter
        write([record(1), record(2, status="closed"), record(3, severity="major"),
               record(4, status="dispatched", assignee="department:water",
                      due="2026-11-27T19:00:00+08:00"),  # 11:00 UTC: overdue at NOW
               record(5, status="dispatched", due="2026-11-28T00:00:00+00:00"),
               record(6, status="resolved", due="2026-11-01T00:00:00+00:00")])

        def ids(**fields: Any) -> list[int]:
            found = rows.incidents(IncidentQuery(**{"center": "c", "depth": 1, "now": NOW,
                                                    **fields}))
            return sorted(int(r["id"][3:]) for r in found)

        assert ids() == [1, 2, 3, 4, 5, 6]
        assert ids(center="t1", depth=3) == [1, 3, 5]
        assert ids(center="d1", depth=2, statuses=("closed",)) == [2]
        assert ids(statuses=("reported", "dispatched")) == [1, 3, 4, 5]
        assert ids(grid="g-t2") == [2, 4, 6]
        assert ids(severity="major") == [3]
        assert ids(assignee="department:water") == [4]
        assert ids(overdue=True) == [4]  # a resolved case is not overdue
        assert ids(overdue=False) == [1, 2, 3, 5, 6]
        assert [r["id"] for r in rows.overdue(NOW)] == ["id-004"]

    def test_open311_filters_by_category_id_and_report_time(
            self, adapter: tuple[Any, Write]) -> None:
        rows, write = adapter
        write([record(1), record(2, category="garbage"), record(3), record(4, category="garbage")])

        def ids(**fields: Any) -> list[int]:
            found = rows.incidents(IncidentQuery(**{"center": "c", "depth": 1, **fields}))
            return sorted(int(r["id"][3:]) for r in found)

        assert ids(categories=("garbage",)) == [2, 4]
        assert ids(categories=("garbage", "noise")) == [1, 2, 3, 4]
        assert ids(ids=("id-001", "id-004", "id-999")) == [1, 4]
        # reported at 08:01 ... 08:04 UTC; bounds as datetime.isoformat() writes them
        assert ids(reported_from="2026-11-27T08:02:00+00:00") == [2, 3, 4]
        assert ids(reported_to="2026-11-27T08:02:00+00:00") == [1, 2]
        assert ids(reported_from="2026-11-27T08:01:30.500000+00:00",
                   reported_to="2026-11-27T08:03:00+00:00", categories=("noise",)) == [3]


class TestMemoryRows(IncidentRowsContract):
    @pytest.fixture
    def adapter(self, tmp_path: Path) -> Iterator[tuple[Any, Write]]:
        store = MemoryViewStore()
        yield store, lambda cases: store.commit(1, [], None, cases)


class TestSQLiteRows(IncidentRowsContract):
    @pytest.fixture
    def adapter(self, tmp_path: Path) -> Iterator[tuple[Any, Write]]:
        store = SQLiteViewStore(tmp_path / "views.db")
        yield store, lambda cases: store.commit(1, [], None, cases)
        store.close()

    def test_open_cases_load_back_and_reset_drops_them(self, tmp_path: Path) -> None:
        store = SQLiteViewStore(tmp_path / "views.db")
        store.commit(2, [], None, [record(1), record(2, status="rejected")])
        assert [c["id"] for c in store.load().cases] == ["id-001"]
        store.reset()
        assert store.load().cases == []
        assert store.incidents(IncidentQuery(center="c", depth=1)) == []
        store.close()


@pytest.mark.integration
class TestPostgresViewStoreRows(IncidentRowsContract):
    @pytest.fixture
    def adapter(self, postgres_dsn: str, pg_schema: str) -> Iterator[tuple[Any, Write]]:
        store = PostgresViewStore(postgres_dsn, schema=pg_schema)
        yield store, lambda cases: store.commit(1, [], None, cases)
        store.close()


@pytest.mark.integration
class TestPostgresDistributedRows(IncidentRowsContract):
    @pytest.fixture
    def adapter(self, postgres_dsn: str, pg_schema: str) -> Iterator[tuple[Any, Write]]:
        rows = PostgresIncidentRows(postgres_dsn, pg_schema)
        yield rows, rows.upsert_now
        rows.close()
