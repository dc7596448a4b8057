"""The small SQL helper: one transaction per block on a kept SQLite connection."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from infra.store.sqldb import Database


def test_blocks_commit_or_roll_back_and_the_connection_stays_usable(tmp_path: Path) -> None:
    db = Database("sqlite", sqlite_path=tmp_path / "x.db")
    with db.tx() as tx:
        tx.execute("CREATE TABLE t (a INTEGER)")
        tx.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    with pytest.raises(RuntimeError), db.tx() as tx:
        tx.execute("INSERT INTO t VALUES (3)")
        raise RuntimeError("refused")
    with db.tx() as tx:  # the same kept connection, out of the failed transaction
        assert tx.execute("SELECT a FROM t ORDER BY a") == [(1,), (2,)]
    with pytest.raises(Exception, match="no such table"), db.tx() as tx:
        tx.execute("SELECT * FROM missing")
    with db.tx() as tx:
        assert tx.execute("SELECT COUNT(*) FROM t") == [(2,)]


def test_each_thread_has_its_own_connection(tmp_path: Path) -> None:
    db = Database("sqlite", sqlite_path=tmp_path / "x.db")
    with db.tx() as tx:
        tx.execute("CREATE TABLE t (a INTEGER)")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                with db.tx() as tx:
                    tx.execute("INSERT INTO t VALUES (?)", (n * 100 + i,))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.tx() as tx:
        assert tx.execute("SELECT COUNT(*) FROM t") == [(80,)]
    db.close()


def test_with_turns_a_block_waits_for_the_event_store_writers_turn(tmp_path: Path) -> None:
    """The sealer's and the snapshots' blocks on events.db take the turns the store's writers
    take (infra/store/write_turn.py): a block does not start while another holder has the turn,
    and starts once it is released. Without turns (every other file) a block takes none."""
    from infra.store.write_turn import WriteTurn
    from tests.turns import order_behind_a_held_turn

    path = tmp_path / "events.db"
    db = Database("sqlite", sqlite_path=path, turns=True)
    with db.tx() as tx:
        tx.execute("CREATE TABLE t (a INTEGER)")

    def write() -> None:
        with db.tx() as tx:
            tx.execute("INSERT INTO t VALUES (1)")

    assert order_behind_a_held_turn(path, write) == ["released", "committed"]
    with db.tx() as tx:
        assert tx.execute("SELECT COUNT(*) FROM t") == [(1,)]
    plain = Database("sqlite", sqlite_path=tmp_path / "other.db")
    assert plain.turn is None
    with WriteTurn(tmp_path / "other.db"), plain.tx() as tx:  # takes no turn: no wait
        tx.execute("CREATE TABLE u (a INTEGER)")


def test_the_sealer_takes_the_recorders_turns(tmp_path: Path) -> None:
    from infra.bootstrap import build_service
    from infra.loaders.jurisdiction import load_jurisdiction
    from infra.security.sealer import build_sealer
    from infra.settings import Settings
    from infra.store.write_turn import WriteTurn

    settings = Settings().with_(data_dir=tmp_path / "data", seal_key_path=str(tmp_path / "seal.pem"))
    service = build_service(settings, load_jurisdiction(settings.jurisdiction))
    try:
        sealer = build_sealer(settings, service.recorder)
        assert sealer.db.turn is not None
        assert sealer.db.turn.path == WriteTurn(settings.sqlite_path).path
    finally:
        service.close()


def test_a_read_takes_no_turn_and_sees_what_is_committed(tmp_path: Path) -> None:
    """`read()` (the sealer's lag gauge on /metrics, run on the server's event loop) neither
    waits for a held turn nor for SQLite's write lock: on the loop it stalled every request
    behind the ingest writer's batch in flight (BENCHMARKS.md, #17 seventh pass)."""
    from tests.turns import order_behind_a_held_turn

    path = tmp_path / "events.db"
    db = Database("sqlite", sqlite_path=path, turns=True)
    with db.tx() as tx:
        tx.execute("PRAGMA journal_mode=WAL")
        tx.execute("CREATE TABLE t (a INTEGER)")
        tx.execute("INSERT INTO t VALUES (1)")
    seen: list[object] = []

    def read() -> None:
        with db.read() as tx:
            seen.append(tx.execute("SELECT COUNT(*) FROM t")[0][0])

    assert order_behind_a_held_turn(path, read) == ["committed", "released"]
    assert seen == [1]
    with db.tx() as outer:  # nested in a write block of the same thread: a connection of its own
        outer.execute("INSERT INTO t VALUES (2)")
        with db.read() as inner:
            assert inner.execute("SELECT COUNT(*) FROM t") == [(1,)]  # not yet committed
    with db.read() as tx:
        assert tx.execute("SELECT COUNT(*) FROM t") == [(2,)]


def test_the_sealers_position_is_read_while_a_writer_holds_the_turn(tmp_path: Path) -> None:
    from infra.bootstrap import build_service
    from infra.loaders.jurisdiction import load_jurisdiction
    from infra.security.sealer import build_sealer
    from infra.settings import Settings
    from tests.turns import order_behind_a_held_turn

    settings = Settings().with_(data_dir=tmp_path / "data", seal_key_path=str(tmp_path / "seal.pem"))
    service = build_service(settings, load_jurisdiction(settings.jurisdiction))
    try:
        sealer = build_sealer(settings, service.recorder)
        positions: list[int] = []
        assert order_behind_a_held_turn(
            settings.sqlite_path, lambda: positions.append(sealer.position())) == [
            "committed", "released"]
        assert positions == [0]
    finally:
        service.close()
