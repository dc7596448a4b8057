"""A singleton's work in a child process of the server (the sealer, the time-travel snapshots).

In the server's process such work shares the GIL with the HTTP loop and the projection runner:
during a burst of alerts an officer's command waited behind it (BENCHMARKS.md, #17). A
`ChildProcess` keeps one child running the work while `run` runs: `run` is what the server holds
the work's lease for (`infra/store/lease.py`), so there is one child per lease holder.

- The child is a fresh interpreter (spawn: no inherited threads or connections) that builds what
  it needs from the same `Settings` (keys, paths and secrets come from configuration).
- A child that exits (or is killed) is started again after 1, 2, 4 ... 30 s; one that ran for 30 s
  starts its next failure from 1 s again. `restarts` counts them.
- Cancelling `run` (the lease lost, the server stopping) stops the child: SIGTERM, on which the
  child ends after the batch in hand (`follow`), then SIGKILL after `grace` seconds.
- A child whose server died without stopping it (kill -9) sees its parent change and exits after
  the batch in hand (`follow` checks between batches and every 0.1 s while it waits).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

from infra.settings import Settings

log = logging.getLogger(__name__)

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STABLE_AFTER = 30.0  # seconds a child must run for its next failure to wait the shortest again


class Attaches(Protocol):
    """What the parent sends the child down a pipe (`infra/security/seal_process.Forward`), or,
    on a duplex pipe, also what it hears back (`infra/runner/runner_process.RunnerMirror`)."""

    def attach(self, conn: Connection | None) -> None: ...


# target(settings, parent pid, the child's end of the pipe or None)
Target = Callable[[Settings, int, Connection | None], None]


def stopping(parent: int) -> Callable[[], bool]:
    """In the child: whether it should stop, after SIGTERM or once its parent is gone. Ctrl-C is
    the server's to handle. The signal handler only sets a flag: it takes no lock the main
    thread may hold."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    flag = {"stop": False}

    def on_term(_signum: int, _frame: object) -> None:
        flag["stop"] = True

    signal.signal(signal.SIGTERM, on_term)

    def stopped() -> bool:
        return flag["stop"] or os.getppid() != parent

    return stopped


def follow(name: str, step: Callable[[Callable[[], bool]], object], interval: float,
           parent: int, tick: float = 0.1) -> None:
    """The child's loop: run `step(stopped)` every `interval` seconds until SIGTERM or until the
    parent is gone. `stopped()` tells the step to end between two of its batches (so a backlog
    does not keep a stopping child past the server's grace period; see `stopping`)."""
    stopped = stopping(parent)
    while not stopped():
        step(stopped)
        wake = time.monotonic() + interval
        while not stopped() and time.monotonic() < wake:
            time.sleep(min(tick, max(0.0, wake - time.monotonic())))
    log.info("%s process %s stops", name, os.getpid())


def child_logging(name: str, settings: Settings) -> None:
    """Log as the server does (LINKAGE_LOG_FORMAT), each line naming the child."""
    from infra.runtime.logs import configure

    configure(settings.log_format, process=name)


class ChildProcess:
    """The server's side: keeps one child running `target` while `run` runs."""

    def __init__(self, name: str, target: Target, settings: Settings, *,
                 forward: Attaches | None = None, duplex: bool = False, grace: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.target = target
        self.settings = settings
        self.forward = forward  # sent to each child down a pipe, if given
        self.duplex = duplex  # the pipe carries the child's answers too
        self.grace = grace
        self.clock = clock
        self.process: Any = None  # the child now running, if any
        self.restarts = 0  # children started after one exited

    @property
    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None else None

    def _start(self) -> Any:
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
        receiving, sending = (ctx.Pipe(duplex=self.duplex) if self.forward is not None
                              else (None, None))
        process = ctx.Process(target=self.target, args=(self.settings, os.getpid(), receiving),
                              name=f"linkage-{self.name}", daemon=True)
        process.start()
        if self.forward is not None:
            assert receiving is not None
            receiving.close()  # the child holds it: EOF reaches the child when ours closes
            self.forward.attach(sending)
        log.info("%s process %s started", self.name, process.pid)
        return process

    def _stop(self, process: Any) -> None:
        """SIGTERM (the child ends after its round in hand), SIGKILL after the grace period."""
        if self.forward is not None:
            self.forward.attach(None)
        if process.is_alive():
            process.terminate()
            process.join(self.grace)
        if process.is_alive():
            process.kill()
            process.join(5)

    async def run(self, poll: float = 0.2) -> None:
        """Keep a child running until cancelled; restart one that exits, with backoff."""
        failures = 0
        try:
            while True:
                # Started on the loop (a spawn is a fork and a pipe write): a cancel cannot land
                # between starting a child and knowing it.
                started = self.clock()
                try:
                    process = self.process = self._start()
                except OSError as exc:  # no fds, no memory: back off as for a child that died
                    process, why = None, f"could not start ({exc})"
                else:
                    while process.is_alive():
                        await asyncio.sleep(poll)
                    self.process = None
                    if self.forward is not None:
                        self.forward.attach(None)
                    why = f"(pid {process.pid}) exited with {process.exitcode}"
                failures = 1 if self.clock() - started >= STABLE_AFTER else failures + 1
                wait = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - 1))
                log.error("%s process %s; starting another in %gs", self.name, why, wait)
                self.restarts += 1
                await asyncio.sleep(wait)
        finally:
            process = self.process
            self.process = None
            if process is not None:
                # Not on the event loop: the child may take up to `grace` to end its round.
                await asyncio.shield(asyncio.to_thread(self._stop, process))
