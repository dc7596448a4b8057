"""A sealed store to attack: raw SQL access as an attacker has it, a scripted history, the
`linkage audit` commands run as an operator runs them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from domain.application import IncidentService
from infra.bootstrap import build_service
from infra.cli.commands import main
from infra.loaders.jurisdiction import load_jurisdiction
from infra.security.sealer import build_sealer
from infra.settings import Settings

ACTOR = {"user": "officer", "role": "city_officer", "center": "130700"}
JURISDICTION = load_jurisdiction(Settings().jurisdiction)
SEAL_TABLES = ("linkage_seal_chain", "linkage_seal_checkpoints", "linkage_seal_tracking",
               "linkage_seal_leaves", "linkage_seal_nodes", "linkage_seal_tree",
               "linkage_seal_heads")


class Store:
    """Raw access to the stored_events table, as an attacker with database access has it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pg = settings.store == "postgres"

    def _connect(self) -> Any:
        if self.pg:
            import psycopg

            conn = psycopg.connect(self.settings.postgres_dsn, autocommit=True)
            conn.execute(f"SET search_path TO {self.settings.postgres_schema}")
            return conn
        return sqlite3.connect(self.settings.sqlite_path, isolation_level=None)

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        id_col = "notification_id" if self.pg else "rowid"
        table = "linkage_events" if self.pg else "stored_events"  # eventsourcing's names
        sql = sql.replace("{id}", id_col).replace("stored_events", table)
        if self.pg:
            sql = sql.replace("?", "%s")
        conn = self._connect()
        try:
            cur = conn.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def row(self, n: int) -> tuple[Any, ...]:
        return self.run("SELECT originator_id, originator_version, topic, state "
                        "FROM stored_events WHERE {id} = ?", (n,))[0]

    def modify(self, n: int) -> None:
        state = bytes(self.row(n)[3])
        changed = state.replace(b'"category":"noise"', b'"category":"n0ise"')
        if changed == state:
            changed = state.replace(b'"user":"officer"', b'"user":"0fficer"')
        assert changed != state
        self.run("UPDATE stored_events SET state = ? WHERE {id} = ?", (changed, n))

    def delete(self, n: int) -> None:
        self.run("DELETE FROM stored_events WHERE {id} = ?", (n,))

    def swap(self, a: int, b: int) -> None:
        ra, rb = self.row(a), self.row(b)
        put = ("UPDATE stored_events SET originator_id = ?, originator_version = ?, topic = ?, "
               "state = ? WHERE {id} = ?")
        self.run("UPDATE stored_events SET originator_version = -1 WHERE {id} = ?", (a,))
        self.run("UPDATE stored_events SET originator_version = -2 WHERE {id} = ?", (b,))
        self.run(put, (*rb, a))  # a now holds b's event
        self.run(put, (*ra, b))  # b now holds a's event

    def tables(self) -> list[str]:
        if self.pg:
            return [r[0] for r in self.run(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                "ORDER BY table_name", (self.settings.postgres_schema,))]
        return [r[0] for r in self.run("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "ORDER BY name")]

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the events table and of each seal table, and the tables there are."""
        rows: dict[str, list[tuple[Any, ...]]] = {"tables": [(t,) for t in self.tables()]}
        for table in ("stored_events", *SEAL_TABLES):
            columns = "{id}, *" if table == "stored_events" else "*"
            rows[table] = self.run(f"SELECT {columns} FROM {table} ORDER BY 1")
        return rows

    def chain_hash(self, n: int) -> bytes:
        return bytes(self.run("SELECT hash FROM linkage_seal_chain WHERE notification_id = ?",
                              (n,))[0][0])

    def track(self, n: int, count: int, head: bytes) -> None:
        """Set the sealer's tracking row, as if it had sealed up to notification n."""
        self.run("UPDATE linkage_seal_tracking SET notification_id = ?, count = ?, head = ? "
                 "WHERE name = 'sealer'", (n, count, head))

    def unseal_from(self, n: int, checkpoints: bool = True) -> None:
        """Delete the chain rows from notification n on (and the checkpoints there, unless told
        not to); rewind tracking to the last remaining row, as the sealer would have left it."""
        self.run("DELETE FROM linkage_seal_chain WHERE notification_id >= ?", (n,))
        if checkpoints:
            self.run("DELETE FROM linkage_seal_checkpoints WHERE notification_id >= ?", (n,))
        (count,) = self.run("SELECT COUNT(*) FROM linkage_seal_chain")[0]
        self.track(n - 1, count, self.chain_hash(n - 1))
        if checkpoints:
            self.cut_tree(int(count))

    def cut_tree(self, size: int) -> None:
        """Cut the Merkle tree back to its first `size` leaves, as a thorough attacker would:
        leaves, nodes, signed tree heads and the frontier."""
        from infra.security import merkle

        self.run("DELETE FROM linkage_seal_leaves WHERE idx >= ?", (size,))
        for level in range(1, 63):
            self.run("DELETE FROM linkage_seal_nodes WHERE level = ? AND (idx + 1) * ? > ?",
                     (level, 1 << level, size))
        self.run("DELETE FROM linkage_seal_heads WHERE tree_size > ?", (size,))
        frontier: list[bytes] = []
        leaves = self.run("SELECT idx, notification_id, hash FROM linkage_seal_leaves "
                          "ORDER BY idx")
        for index, _n, leaf in leaves:
            merkle.append(frontier, int(index), bytes(leaf))
        last = int(leaves[-1][1]) if leaves else 0
        self.run("UPDATE linkage_seal_tree SET size = ?, notification_id = ?, frontier = ?",
                 (size, last, merkle.pack(frontier)))

    def clear_seals(self) -> None:
        for table in SEAL_TABLES:
            self.run(f"DELETE FROM {table}")

    def insert(self, n: int, like: int) -> None:
        oid, _version, topic, state = self.row(like)
        cols = "notification_id, " if self.pg else "rowid, "
        self.run(f"INSERT INTO stored_events ({cols}originator_id, originator_version, topic, "
                 "state) VALUES (?, ?, ?, ?, ?)", (n, oid, 999, topic, state))


def settings_for(request: pytest.FixtureRequest, tmp_path: Path, **changes: Any) -> Settings:
    """Settings for a store of the kind request.param names (sqlite, postgres), checkpoint every 4
    events; PostgreSQL in a fresh schema."""
    base = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=4, **changes)
    if request.param == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        schema = request.getfixturevalue("pg_schema")
        return base.with_(store="postgres", postgres_dsn=dsn, postgres_schema=schema)
    return base


def make_history(settings: Settings, incidents: int = 3, grid: str | None = None
                 ) -> IncidentService:
    """Three incidents: reported, accepted, dispatched (9 events, notifications 1..9), in
    `grid` (the first grid unless given)."""
    service = build_service(settings, JURISDICTION)
    grid = grid or JURISDICTION.grids()[0].id
    for i in range(incidents):
        incident = service.report(actor=ACTOR, grid=grid, source="hotline", category="noise",
                                  severity="routine", description=f"case {i}")
        service.act(str(incident.id), "accept", actor=ACTOR)
        service.act(str(incident.id), "dispatch", actor=ACTOR,
                    assignee={"kind": "department", "id": "water"}, due="2030-01-01T00:00:00Z",
                    due_reason="a long-term works contract")
    return service


def seal(settings: Settings, service: IncidentService) -> int:
    return build_sealer(settings, service.recorder).catch_up()


def audit(settings: Settings, command: str, *args: str) -> tuple[int, str]:
    """Run `linkage audit <command> ...` on this store; (exit code, stdout and stderr)."""
    where = ["--data-dir", str(settings.data_dir), "--store", settings.store]
    if settings.postgres_schema:
        where += ["--postgres-schema", settings.postgres_schema]
    result = CliRunner().invoke(main, ["audit", command, *where, *args],
                                env={"LINKAGE_POSTGRES_DSN": settings.postgres_dsn,
                                     "LINKAGE_SEAL_CHECKPOINT_EVERY": "4",
                                     "LINKAGE_SEAL_KEY": seal_key_path(settings)})
    return result.exit_code, result.output


def seal_key_path(settings: Settings) -> str:
    """The key `seal` signed with, as LINKAGE_SEAL_KEY (which --store postgres requires)."""
    return settings.seal_key_path or str(settings.data_dir / "seal_ed25519.pem")


def verify(settings: Settings, *args: str) -> tuple[int, str]:
    return audit(settings, "verify", *args)
