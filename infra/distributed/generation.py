"""The worker group's generation: which faust app id (consumer group, by-center and changelog
topics) `linkage worker` runs under.

`linkage replay --mode distributed` bumps it, and so does a worker that finds the broker lost
its records (an in-memory broker restarted: the old group's offsets, committed into the new
broker before the loss was noticed, would make a restarted worker fold the log from its
middle). Either way the next worker starts a group that has read nothing: it folds the events topic from its first record into a table of its own, under new
epochs (the fan-out holds them back until they caught up: infra/distributed/redis_fanout.py).
Generation 0 is the bare LINKAGE_WORKER_ID, so deployments from before keep their group.
"""

from __future__ import annotations


def app_id(worker_id: str, generation: int) -> str:
    """The faust app id of a worker group's generation."""
    return worker_id if generation == 0 else f"{worker_id}-g{generation}"


class WorkerGeneration:
    """In PostgreSQL, next to the relay's position: the generation of each worker group."""

    def __init__(self, dsn: str, schema: str = "") -> None:
        import psycopg

        self.table = f"{schema}.linkage_worker_generation" if schema else "linkage_worker_generation"
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (worker_id TEXT PRIMARY KEY, "
            "generation INTEGER NOT NULL)"
        )

    def load(self, worker_id: str) -> int:
        row = self._conn.execute(
            f"SELECT generation FROM {self.table} WHERE worker_id = %s", (worker_id,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def bump(self, worker_id: str) -> int:
        """Start the next generation; returns it."""
        row = self._conn.execute(
            f"INSERT INTO {self.table} (worker_id, generation) VALUES (%s, 1) "
            "ON CONFLICT (worker_id) DO UPDATE SET generation = "
            f"{self.table}.generation + 1 RETURNING generation",
            (worker_id,),
        ).fetchone()
        assert row is not None  # RETURNING always yields the row it wrote
        return int(row[0])

    def advance(self, worker_id: str, past: int) -> int:
        """Start the generation after `past` unless another worker of the group already did
        (compare and set: every worker that saw the same broker loss moves the group on once);
        returns the generation now current."""
        with self._conn.transaction():
            self._conn.execute(
                f"INSERT INTO {self.table} (worker_id, generation) VALUES (%s, 0) "
                "ON CONFLICT (worker_id) DO NOTHING", (worker_id,))
            self._conn.execute(
                f"UPDATE {self.table} SET generation = %s WHERE worker_id = %s AND "
                "generation = %s", (past + 1, worker_id, past))
        return self.load(worker_id)

    def close(self) -> None:
        self._conn.close()
