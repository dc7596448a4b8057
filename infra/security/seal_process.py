"""The sealer in a process of its own (`LINKAGE_SEAL_PROCESS`, on by default for `linkage serve`).

In the server's process the sealer's hashing and its write transactions share the GIL with the
HTTP loop and the projection runner: during a burst of alerts an officer's command waited behind
them (BENCHMARKS.md, #17 seventh pass). Here the server, while it holds the sealer's lease
(`infra/store/lease.py`), keeps one child process sealing: a fresh interpreter (spawn) that
reads the event table, seals and signs exactly as the in-process sealer does
(`Sealer.follow_step`), with the same key from configuration.

On SQLite the server's own commits (officers' commands) reach the child as they were committed:
the server recorder's memory of unsealed events (`LinkageSQLiteRecorder.unsealed`) is a `Forward`
here, which a thread of the server sends down a pipe to the child, where they fill the child
recorder's memory; the child's sealer takes them from there as the in-process sealer would
(`stored_reader`) and reads everything else from the table. So, as before, a row altered in the
table before the sealer reached it is named by `audit verify` rather than sealed as altered. What
is committed while no child runs, or more than the child keeps up with, is read from the table.

Supervision: a child that exits (or is killed) is started again after 1, 2, 4 ... 30 s; one that
ran for 30 s starts its next failure from 1 s again. Losing the lease or stopping the server
cancels `SealerProcess.run`, which stops the child (SIGTERM: it finishes the batch in hand; SIGKILL
after `grace` seconds). A child whose server died without stopping it (kill -9) notices that its
parent changed and exits within one round, so two sealers never outlive one lease for long; the
chain's tracking row, locked in each write transaction, keeps even that harmless.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from infra.settings import Settings
from infra.store.sqlite_recorder import KNOWN_LIMIT

log = logging.getLogger(__name__)

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STABLE_AFTER = 30.0  # seconds a child must run for its next failure to wait the shortest again


class Forward:
    """Stands in for the server recorder's memory of unsealed events: what the server commits is
    sent to the sealer child (by a thread of its own: the commit never waits for the pipe)."""

    def __init__(self, limit: int = KNOWN_LIMIT) -> None:
        self.limit = limit  # events waiting to be sent at most; past it they are dropped
        self._batches: collections.deque[list[tuple[int, tuple[Any, ...]]]] = collections.deque()
        self._waiting = 0
        self._conn: Connection | None = None
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def attach(self, conn: Connection | None) -> None:
        """Send to this child's end of the pipe from now on (None: drop, no child runs)."""
        with self._ready:
            self._conn = conn
            self._batches.clear()
            self._waiting = 0
            if conn is not None and self._thread is None:
                self._thread = threading.Thread(target=self._send, name="linkage-seal-forward",
                                                daemon=True)
                self._thread.start()

    def put(self, entries: list[tuple[int, tuple[Any, ...]]]) -> None:
        with self._ready:
            if self._conn is None or self._waiting + len(entries) > self.limit:
                return  # the child reads these from the table
            self._batches.append(entries)
            self._waiting += len(entries)
            self._ready.notify()

    def _send(self) -> None:
        while True:
            with self._ready:
                while not self._batches:
                    self._ready.wait()
                entries, conn = self._batches.popleft(), self._conn
                self._waiting -= len(entries)
            if conn is None:
                continue
            try:
                conn.send(entries)
            except (OSError, ValueError):  # the child is gone (or its pipe closed): table reads
                with self._ready:
                    if self._conn is conn:
                        self._conn = None
                        self._batches.clear()
                        self._waiting = 0

    # The in-process sealer's side of the memory, never used while the child seals.
    def take(self, start: int, limit: int) -> list[tuple[Any, ...]]:
        return []

    def forget(self, upto: int) -> None:
        return None

    def __len__(self) -> int:
        return self._waiting


def _receive(conn: Connection, put: Callable[[list[tuple[int, tuple[Any, ...]]]], None]) -> None:
    """The child's side of the pipe: what the server committed, into the child's memory."""
    while True:
        try:
            entries = conn.recv()
        except (EOFError, OSError):
            return
        put(entries)


def _locates_nothing(grid: str) -> list[str]:
    raise KeyError(grid)  # the child reads and seals; it records no command


def seal_main(settings: Settings, parent: int, conn: Connection | None = None) -> None:
    """The child: follow the event log and seal it until told to stop or orphaned."""
    from domain.application import IncidentService
    from infra.runtime.tuning import tune_process
    from infra.security.sealer import build_sealer
    from infra.store.sqlite_recorder import LinkageSQLiteRecorder

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server; the server stops us
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s[sealer]: %(message)s")
    service = IncidentService(_locates_nothing, env=settings.eventsourcing_env())
    if isinstance(service.recorder, LinkageSQLiteRecorder):
        service.recorder.remember = False  # this process commits no events
        if conn is not None:  # what the server commits, as it committed it
            threading.Thread(target=_receive, args=(conn, service.recorder.unsealed.put),
                             name="linkage-seal-receive", daemon=True).start()
    sealer = build_sealer(settings, service.recorder)
    tune_process()
    signed_at = time.monotonic()
    try:
        while not stop.is_set() and os.getppid() == parent:
            signed_at = sealer.follow_step(signed_at, settings.seal_checkpoint_seconds)
            stop.wait(settings.seal_interval)
    finally:
        service.close()


class SealerProcess:
    """The server's side: keeps one sealing child running while `run` runs (under the lease)."""

    def __init__(self, settings: Settings, *, grace: float = 10.0,
                 clock: Callable[[], float] = time.monotonic,
                 target: Callable[..., None] = seal_main,
                 forward: Forward | None = None) -> None:
        self.settings = settings
        self.forward = forward  # the server's commits, sent to each child (SQLite)
        self.grace = grace
        self.clock = clock
        self.target = target
        self.process: Any = None  # the child now running, if any
        self.restarts = 0  # children started after one exited

    @property
    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None else None

    def _start(self) -> Any:
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
        receiving, sending = ctx.Pipe(duplex=False) if self.forward is not None else (None, None)
        process = ctx.Process(target=self.target, args=(self.settings, os.getpid(), receiving),
                              name="linkage-sealer", daemon=True)
        process.start()
        if self.forward is not None:
            assert receiving is not None
            receiving.close()  # the child holds it: EOF reaches the child when ours closes
            self.forward.attach(sending)
        log.info("sealer process %s started", process.pid)
        return process

    def _stop(self, process: Any) -> None:
        """SIGTERM (the child ends after its batch in hand), SIGKILL after the grace period."""
        if self.forward is not None:
            self.forward.attach(None)
        if process.is_alive():
            process.terminate()
            process.join(self.grace)
        if process.is_alive():
            process.kill()
            process.join(5)

    async def run(self, poll: float = 0.2) -> None:
        """Keep a child sealing until cancelled; restart one that exits, with backoff."""
        failures = 0
        try:
            while True:
                # Started on the loop (a spawn is a fork and a pipe write): a cancel cannot land
                # between starting a child and knowing it.
                process = self.process = self._start()
                started = self.clock()
                while process.is_alive():
                    await asyncio.sleep(poll)
                self.process = None
                if self.forward is not None:
                    self.forward.attach(None)
                failures = 1 if self.clock() - started >= STABLE_AFTER else failures + 1
                wait = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - 1))
                log.error("sealer process %s exited with %s; starting another in %gs",
                          process.pid, process.exitcode, wait)
                self.restarts += 1
                await asyncio.sleep(wait)
        finally:
            process = self.process
            self.process = None
            if process is not None:
                # Not on the event loop: the child may take up to `grace` to finish its batch.
                await asyncio.shield(asyncio.to_thread(self._stop, process))
