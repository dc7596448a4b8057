"""`linkage replay --mode distributed` on a real deployment (Tansu, PostgreSQL, Redis, real
processes): with the worker stopped, it starts a new worker generation; the next worker rebuilds
every view under a new epoch, which hubs serve only once it caught up, and the command follows
the rebuild until every center serves its new epoch."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import free_port
from tests.history import ScriptedHistory
from tests.integration.distributed import Console, Stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CITY = "130700"


@pytest.fixture
def stack(tmp_path: Path, postgres_dsn: str, pg_schema: str, redis_url: str) -> Iterator[Stack]:
    from infra.distributed.tansu import TansuBroker

    broker = TansuBroker(log=tmp_path / "broker.log").start()
    deployment = Stack(tmp_path / "stack", postgres_dsn, pg_schema, redis_url, broker.bootstrap)
    yield deployment
    deployment.close()
    broker.stop()


def _hub(stack: Stack) -> str:
    port = free_port()
    stack.start("hub", "serve", "--mode", "distributed", "--port", str(port))
    wait_until(lambda: "Uvicorn running" in stack.log("hub") or
               stack.processes["hub"].poll() is not None, 60, what="hub listening")
    assert stack.processes["hub"].poll() is None, stack.log("hub")
    return f"ws://127.0.0.1:{port}/ws/console?center={CITY}&token={stack.token}"


def _never_emptier(console: Console) -> None:
    """Every snapshot is at or past the position the console already showed."""
    from projections.patch import apply_changes

    position = 0
    view: dict[str, Any] | None = None
    for frame in list(console.frames):
        if frame["type"] == "snapshot":
            assert frame["view"]["position"] >= position, (
                f"a snapshot at position {frame['view']['position']} after {position}")
            view = frame["view"]
        elif frame["type"] == "delta" and view is not None:
            apply_changes(view, frame["changes"])
        if view is not None:
            position = view["position"]


def test_distributed_replay_rebuilds_every_view_under_a_new_epoch_consoles_never_see_it_empty(
        stack: Stack) -> None:
    # The hub first: it and the worker both create the read model's table at start.
    console = Console(_hub(stack))
    stack.start("relay", "relay")
    stack.start("worker", "worker")
    try:
        grids = [g.id for g in stack.jurisdiction.grids()]
        ScriptedHistory(stack.service, grids, incidents=60, seed=43).run()
        stack.wait_converged(120, views=True, what="the history folded")
        before = {c: s[0] for c, s in stack.redis_state().items() if s[0]}
        assert CITY in before
        refused = stack.start("refused", "replay", "--mode", "distributed", "--no-wait")
        assert refused.wait(60) == 1
        assert "has 1 live member(s); stop every `linkage worker` first" in stack.log("refused")
        stack.kill("worker", signal.SIGTERM)
        # Tansu keeps listing a member that left (Apache Kafka drops it): hence --force.
        replay = stack.start("replay", "replay", "--mode", "distributed", "--force")
        wait_until(lambda: "start `linkage worker` now" in stack.log("replay")
                   or replay.poll() is not None, 60, what="the new generation")
        assert replay.poll() is None, stack.log("replay")
        stack.start("worker", "worker")
        assert replay.wait(240) == 0, stack.log("replay")
        assert f"rebuilt: {len(before)} centers" in stack.log("replay")

        after = stack.redis_state()
        assert all(after[c][0] != epoch for c, epoch in before.items()), "every center rebuilt"
        stack.assert_views_equal_to_replay()
        with psycopg.connect(stack.postgres_dsn) as conn:
            row = conn.execute(f"SELECT generation FROM {stack.schema}.linkage_worker_generation "
                               "WHERE worker_id = %s", (stack.env["LINKAGE_WORKER_ID"],)).fetchone()
        assert row == (1,), "the refused replay started no generation"
        wait_until(lambda: any(f["type"] == "snapshot" and f["epoch"] == after[CITY][0]
                               for f in list(console.frames)), 60,
                   what="the console resynced to the new epoch")
        _never_emptier(console)
        state = console.state()
        assert state is not None and state[0] == after[CITY][0]
    finally:
        console.disconnect()
