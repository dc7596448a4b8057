"""The process supervisor behind `linkage up`, with real child processes and a virtual clock."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from infra.runtime.supervisor import Supervisor

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]
EXIT_1 = [sys.executable, "-c", "raise SystemExit(1)"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_exit(supervisor: Supervisor, name: str) -> None:
    process = supervisor.children[name].process
    assert process is not None
    process.wait(10)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def supervisor(clock: Clock):
    lines: list[str] = []
    s = Supervisor(log=lines.append, clock=clock, grace=5)
    s.lines = lines  # type: ignore[attr-defined]
    yield s
    s.stop()


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    s = Supervisor()
    assert [s.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_child_that_exits_is_restarted_after_its_backoff(supervisor: Supervisor,
                                                            clock: Clock) -> None:
    supervisor.add("flaky", EXIT_1)
    supervisor.start()
    first_pid = supervisor.children["flaky"].pid
    for failures, wait in ((1, 1.0), (2, 2.0), (3, 4.0)):
        wait_exit(supervisor, "flaky")
        supervisor.poll()
        child = supervisor.children["flaky"]
        assert child.process is None, "restarted before its backoff"
        assert child.failures == failures
        clock.now += wait - 0.01
        supervisor.poll()
        assert child.process is None, f"restarted before {wait} s"
        clock.now += 0.01
        supervisor.poll()
        assert child.process is not None, f"not restarted after {wait} s"
    assert supervisor.children["flaky"].restarts == 3
    assert supervisor.children["flaky"].pid != first_pid
    assert any("flaky" in line and "exited with 1; restarting in 4 s" in line
               for line in supervisor.lines)  # type: ignore[attr-defined]


def test_a_healthy_child_is_untouched_when_another_dies(supervisor: Supervisor,
                                                         clock: Clock) -> None:
    supervisor.add("healthy", SLEEP)
    supervisor.add("crashing", EXIT_1)
    supervisor.start()
    healthy_pid = supervisor.children["healthy"].pid
    wait_exit(supervisor, "crashing")
    for _ in range(3):
        supervisor.poll()
        clock.now += 30
        supervisor.poll()
        wait_exit(supervisor, "crashing")
    healthy = supervisor.children["healthy"]
    assert healthy.pid == healthy_pid and healthy.restarts == 0
    assert healthy.process is not None and healthy.process.poll() is None


def test_a_stable_run_resets_the_backoff(supervisor: Supervisor, clock: Clock) -> None:
    supervisor.add("flaky", EXIT_1)
    supervisor.start()
    for _ in range(3):  # three quick failures: the next wait would be 8 s
        wait_exit(supervisor, "flaky")
        supervisor.poll()
        clock.now += 30
        supervisor.poll()
    wait_exit(supervisor, "flaky")
    clock.now += supervisor.stable_after  # it had run long enough before this exit
    supervisor.poll()
    assert supervisor.children["flaky"].failures == 1
    assert supervisor.children["flaky"].restart_at == clock.now + 1.0


def test_stop_ends_every_child(supervisor: Supervisor) -> None:
    supervisor.add("a", SLEEP)
    supervisor.add("b", SLEEP)
    supervisor.start()
    processes = [c.process for c in supervisor.children.values()]
    supervisor.stop()
    assert all(p is not None and p.poll() is not None for p in processes)
    supervisor.poll()  # stopped children are not restarted
    assert all(c.process is None for c in supervisor.children.values())


def test_stop_kills_a_child_that_ignores_sigterm(clock: Clock, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = [sys.executable, "-c",
                "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)", str(ready)]
    s = Supervisor(log=lambda _line: None, clock=clock, grace=0.5)
    s.add("stubborn", stubborn)
    s.start()
    deadline = time.monotonic() + 30  # a liveness wait for its handler, nothing is timed
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process = s.children["stubborn"].process
    s.stop()
    assert process is not None and process.returncode == -9


def test_names_are_unique() -> None:
    s = Supervisor()
    s.add("relay", SLEEP)
    with pytest.raises(ValueError, match="already supervised"):
        s.add("relay", SLEEP)


def test_a_child_writes_to_its_own_output_file(supervisor: Supervisor, tmp_path: Path) -> None:
    out = tmp_path / "child.log"
    supervisor.add("talker", [sys.executable, "-c", "print('hello from the child')"], output=out)
    supervisor.start()
    wait_exit(supervisor, "talker")
    assert out.read_text() == "hello from the child\n"


def test_children_named_last_are_stopped_after_the_others(clock: Clock, tmp_path: Path) -> None:
    # Each child records, on SIGTERM, whether the other one was still alive (by its pid file).
    script = ("import os, pathlib, signal, sys, time\n"
              "me, other = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
              "def bye(*_):\n"
              "    alive = other.exists() and os.path.exists('/proc/' + other.read_text())\n"
              "    me.with_suffix('.seen').write_text('other alive' if alive else 'other gone')\n"
              "    sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, bye)\n"
              "me.write_text(str(os.getpid()))\n"
              "time.sleep(60)\n")
    broker, relay = tmp_path / "broker.pid", tmp_path / "relay.pid"
    s = Supervisor(log=lambda _line: None, clock=clock, grace=5)
    s.add("broker", [sys.executable, "-c", script, str(broker), str(relay)])
    s.add("relay", [sys.executable, "-c", script, str(relay), str(broker)])
    s.start()
    deadline = time.monotonic() + 30  # a liveness wait for both handlers, nothing is timed
    while not (broker.exists() and relay.exists()) and time.monotonic() < deadline:
        time.sleep(0.02)
    s.stop(last=["broker"])
    assert relay.with_suffix(".seen").read_text() == "other alive"
    assert broker.with_suffix(".seen").read_text() == "other gone"
