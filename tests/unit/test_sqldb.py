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
