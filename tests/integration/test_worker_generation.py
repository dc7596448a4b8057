"""The worker group's generation in PostgreSQL: `advance` moves a group on once per broker loss,
however many of its workers saw it (compare and set), and `bump` always starts a new one."""

from __future__ import annotations

import pytest

from infra.distributed.generation import WorkerGeneration, app_id

pytestmark = pytest.mark.integration


def test_advance_moves_the_group_on_once_per_loss(postgres_dsn: str, pg_schema: str) -> None:
    first, second = (WorkerGeneration(postgres_dsn, pg_schema) for _ in range(2))
    try:
        assert first.load("w") == 0
        # Two workers of the group, both started at generation 0, both see the loss.
        assert first.advance("w", 0) == 1
        assert second.advance("w", 0) == 1
        assert second.load("w") == 1 and app_id("w", 1) == "w-g1"
        # The next loss, seen by a worker started at generation 1.
        assert second.advance("w", 1) == 2
        # A worker still at an old generation moves nothing.
        assert first.advance("w", 0) == 2
        # `linkage replay --mode distributed` starts a new generation whatever the current one.
        assert first.bump("w") == 3
        assert first.load("other") == 0
    finally:
        first.close()
        second.close()
