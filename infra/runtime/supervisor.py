"""Keeps a set of child processes running: a child that exits is started again after a backoff.

`linkage up` runs the relay, the worker and the hubs under one `Supervisor`. A child that exits
(whatever its code) is logged and restarted after 1, 2, 4 ... up to 30 s; a child that then stays
up for `stable_after` seconds starts its next failure from the shortest wait again. The other
children are never touched. `stop()` ends them all: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    """One supervised command and what the supervisor knows of it."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    output: Path | None = None  # a file the child's stdout/stderr is appended to (else ours)
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures: int = 0  # exits in a row without a stable run between them
    restart_at: float | None = None  # when an exited child is due to start again

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


@dataclass
class Supervisor:
    """Starts children, restarts any that exit (with backoff), stops all on request."""

    children: dict[str, Child] = field(default_factory=dict)
    log: Callable[[str], None] = print
    first_backoff: float = 1.0
    max_backoff: float = 30.0
    stable_after: float = 30.0
    grace: float = 15.0
    clock: Callable[[], float] = time.monotonic

    def add(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
            output: Path | None = None) -> Child:
        if name in self.children:
            raise ValueError(f"a child named {name!r} is already supervised")
        child = Child(name, list(argv), dict(env) if env is not None else None, output)
        self.children[name] = child
        return child

    def start(self) -> None:
        """Start every child that is not running."""
        for child in self.children.values():
            if child.process is None:
                self._spawn(child)

    def backoff(self, failures: int) -> float:
        """Seconds to wait before the restart that follows `failures` exits in a row."""
        return float(min(self.max_backoff, self.first_backoff * 2 ** max(0, failures - 1)))

    def poll(self) -> None:
        """Notice exited children and restart those whose wait is over; never blocks."""
        now = self.clock()
        for child in self.children.values():
            process = child.process
            if process is not None and process.poll() is not None:
                if now - child.started_at >= self.stable_after:
                    child.failures = 0
                child.failures += 1
                wait = self.backoff(child.failures)
                child.restart_at = now + wait
                child.process = None
                self.log(f"{child.name} (pid {process.pid}) exited with {process.returncode}; "
                         f"restarting in {wait:g} s")
            if child.process is None and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)
                self.log(f"{child.name} restarted (pid {child.pid}, restart {child.restarts})")

    def run(self, stopping: Callable[[], bool], every: float = 0.2) -> None:
        """Start all, then poll until `stopping()` is true; the caller stops the children."""
        self.start()
        while not stopping():
            self.poll()
            time.sleep(every)

    def stop(self, last: Sequence[str] = ()) -> None:
        """SIGTERM every running child, wait up to `grace` seconds, then SIGKILL the rest; the
        children named in `last` (a broker the others use) only once the others are gone."""
        first = [c for c in self.children.values() if c.name not in last]
        self._stop([c.process for c in first if c.process is not None])
        self._stop([c.process for c in self.children.values()
                    if c.name in last and c.process is not None])
        for child in self.children.values():
            child.process = None
            child.restart_at = None

    def _stop(self, running: list[subprocess.Popen[bytes]]) -> None:
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _spawn(self, child: Child) -> None:
        if child.output is None:
            child.process = subprocess.Popen(child.argv, env=child.env)
        else:
            with child.output.open("ab") as out:  # the child keeps its own descriptor
                child.process = subprocess.Popen(child.argv, env=child.env, stdout=out,
                                                 stderr=subprocess.STDOUT)
        child.started_at = self.clock()
        child.restart_at = None
