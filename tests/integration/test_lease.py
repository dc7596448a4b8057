"""The lease (infra/store/lease.py) on a real PostgreSQL: one holder at a time, a standby that
takes over when the holder goes, and work stopped at once when the holder's session is lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import psycopg
import pytest

from infra.settings import Settings
from infra.store.lease import Lease, holder

pytestmark = pytest.mark.integration


class Work:
    """A singleton's stand-in: counts its runs and whether it runs now."""

    def __init__(self) -> None:
        self.running = False
        self.started = 0
        self.stopped = 0

    async def __call__(self) -> None:
        self.running = True
        self.started += 1
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            self.running = False
            self.stopped += 1


async def until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """A liveness wait, not a timing assertion."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
    assert predicate(), what


def lease(dsn: str, schema: str, name: str = "singleton") -> Lease:
    return Lease(dsn, name, schema=schema, retry_every=0.2, check_timeout=2.0)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_one_holder_runs_the_work_and_a_standby_takes_over_when_it_goes(
        postgres_dsn: str, pg_schema: str) -> None:
    first, second = lease(postgres_dsn, pg_schema), lease(postgres_dsn, pg_schema)
    work_a, work_b = Work(), Work()
    a = asyncio.create_task(first.run(work_a))
    await until(lambda: work_a.running, "the first lease's work runs")
    b = asyncio.create_task(second.run(work_b))
    await until(lambda: second._conn is not None, "the second lease tried")
    await asyncio.sleep(0.6)  # three of the standby's retries
    assert not work_b.running and work_b.started == 0
    assert holder(postgres_dsn, "singleton", pg_schema) == first.label

    await stop(a)  # the holder goes: its work stops, the standby's starts
    assert not work_a.running and work_a.stopped == 1
    await until(lambda: work_b.running, "the standby's work runs")
    assert second.held and not first.held
    await stop(b)


async def test_a_lost_session_stops_the_work_at_once_and_the_lease_is_taken_again(
        postgres_dsn: str, pg_schema: str) -> None:
    first, second = lease(postgres_dsn, pg_schema), lease(postgres_dsn, pg_schema)
    work_a, work_b = Work(), Work()
    a = asyncio.create_task(first.run(work_a))
    await until(lambda: work_a.running, "the first lease's work runs")
    b = asyncio.create_task(second.run(work_b))
    await asyncio.sleep(0.4)
    assert not work_b.running

    # The holder's session ends under it (a network cut, a restarted server, an operator).
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (first._conn.info.backend_pid,))
    await until(lambda: work_a.stopped == 1, "the holder's work stopped")
    assert not first.held
    # One of the two takes the lease (the old holder stands by again like any other)...
    await until(lambda: work_a.running or work_b.running, "the lease taken again")
    assert not (work_a.running and work_b.running)
    # ...and the other takes over when that one goes.
    holding, waiting = (a, b) if work_a.running else (b, a)
    await stop(holding)
    await until(lambda: work_a.running or work_b.running, "the other lease's work runs")
    await stop(waiting)


async def test_leases_of_other_names_or_schemas_do_not_exclude_each_other(
        postgres_dsn: str, pg_schema: str) -> None:
    leases = [lease(postgres_dsn, pg_schema, "sealer"), lease(postgres_dsn, pg_schema, "relay"),
              lease(postgres_dsn, pg_schema + "_other", "sealer")]
    works = [Work() for _ in leases]
    tasks = [asyncio.create_task(one.run(work)) for one, work in zip(leases, works, strict=True)]
    await until(lambda: all(w.running for w in works), "every lease's work runs")
    for task in tasks:
        await stop(task)


async def test_work_that_fails_releases_the_lease_and_raises(postgres_dsn: str,
                                                             pg_schema: str) -> None:
    async def broken() -> None:
        raise RuntimeError("broken singleton")

    with pytest.raises(RuntimeError, match="broken singleton"):
        await lease(postgres_dsn, pg_schema).run(broken)
    assert holder(postgres_dsn, "singleton", pg_schema) is None


async def test_on_sqlite_the_lease_is_always_held() -> None:
    one = Lease.for_settings(Settings(store="sqlite"), "sealer")
    two = Lease.for_settings(Settings(store="sqlite"), "sealer")
    works = [Work(), Work()]
    tasks = [asyncio.create_task(one.run(works[0])), asyncio.create_task(two.run(works[1]))]
    await until(lambda: all(w.running for w in works), "both run: one process, nothing to share")
    assert one.held and two.held
    for task in tasks:
        await stop(task)
