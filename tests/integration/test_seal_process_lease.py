"""The sealer process under its lease on a real PostgreSQL (several hubs): only the holder runs a
sealing child; when the holder goes, its child stops and the standby's child seals on from the
chain's tracking row."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.security.seal_process import sealer_process
from infra.security.sealer import build_sealer
from infra.settings import Settings
from infra.store.lease import Lease
from tests.integration.sealed_store import make_history

pytestmark = pytest.mark.integration


async def until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """A liveness wait, not a timing assertion."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
    assert predicate(), what


async def test_only_the_lease_holder_runs_a_sealer_process_and_the_standby_takes_over(
        postgres_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    settings = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=4,
                                seal_interval=0.1, store="postgres", postgres_dsn=postgres_dsn,
                                postgres_schema=pg_schema)
    service = make_history(settings)  # notifications 1..9
    sealer = build_sealer(settings, service.recorder)  # the hubs' own (position, verify)
    hubs = [sealer_process(settings), sealer_process(settings)]
    leases = [Lease(postgres_dsn, "sealer", schema=pg_schema, retry_every=0.2, check_timeout=2.0)
              for _ in hubs]
    tasks = [asyncio.create_task(lease.run(hub.run)) for lease, hub in zip(leases, hubs, strict=True)]
    try:
        await until(lambda: sealer.position() == 9, "the holder's child sealed 1..9")
        holding = [i for i, hub in enumerate(hubs) if hub.pid is not None]
        assert len(holding) == 1, "one child, the lease holder's"
        held = holding[0]
        child = hubs[held].process
        tasks[held].cancel()  # the holder goes: its lease and its child with it
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[held]
        assert not child.is_alive() and hubs[held].pid is None
        standby = hubs[1 - held]
        await until(lambda: standby.pid is not None, "the standby's child started")
        more = make_history(settings)  # notifications 10..18
        more.close()
        await until(lambda: sealer.position() == 18, "the standby's child sealed on")
        verified = sealer.verify()
        assert verified.ok and verified.count == 18, verified.message
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        service.close()
    assert all(hub.pid is None for hub in hubs)
