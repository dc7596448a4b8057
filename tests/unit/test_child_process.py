"""A singleton's work in a supervised child (infra/runtime/child_process.py): SIGTERM stops a child
between the batches of a backlog, and a child that cannot even start is retried, not given up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from infra.runtime.child_process import ChildProcess, follow
from infra.settings import Settings

BACKLOG = 2_000  # batches of 10 ms: 20 s of work, far past the time the test waits


def _backlog_main(settings: Settings, parent: int, conn: Connection | None = None) -> None:
    """A child with a long backlog: one line per batch, while not stopped."""
    out = settings.data_dir / "batches"

    def step(stopped: Callable[[], bool]) -> None:
        for n in range(BACKLOG):
            if stopped():
                return
            with out.open("a") as f:
                f.write(f"{n}\n")
            time.sleep(0.01)

    follow("backlog", step, 60.0, parent)


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


async def until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """A liveness wait, not a timing assertion."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
    assert predicate(), what


async def test_sigterm_stops_a_child_between_the_batches_of_its_backlog(tmp_path: Path) -> None:
    settings = Settings().with_(data_dir=tmp_path)
    child = ChildProcess("backlog", _backlog_main, settings, grace=60)
    task = asyncio.create_task(child.run())
    await until(lambda: _lines(tmp_path / "batches") >= 5, "the child works on its backlog")
    process = child.process
    task.cancel()  # SIGTERM; SIGKILL only after the (long) grace period
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not process.is_alive()
    assert process.exitcode == 0  # it stopped itself: not killed
    assert _lines(tmp_path / "batches") < BACKLOG  # between two batches, not after all of them
    assert child.pid is None and child.restarts == 0


class _Unstartable(ChildProcess):
    def _start(self) -> object:
        self.attempts = getattr(self, "attempts", 0) + 1
        raise OSError(24, "Too many open files")


async def test_a_child_that_cannot_start_is_tried_again_with_backoff(tmp_path: Path) -> None:
    child = _Unstartable("unstartable", _backlog_main, Settings().with_(data_dir=tmp_path))
    task = asyncio.create_task(child.run())
    await until(lambda: child.restarts >= 2, "tried again after each failure")
    assert not task.done()  # still supervising, not given up
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert child.attempts >= 2 and child.pid is None
