"""The per-address budget of failed authentications, on a hand-driven clock."""

from __future__ import annotations

import logging

import pytest

from command_center.throttle import FailureThrottle, QuietRefusals


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_refused_after_its_burst_and_let_in_again_as_it_refills() -> None:
    clock = Clock()
    throttle = FailureThrottle(rate=0.5, burst=3, clock=clock)
    for _ in range(2):
        throttle.failed("10.0.0.1")
        assert throttle.wait("10.0.0.1") == 0.0
    throttle.failed("10.0.0.1")
    assert throttle.wait("10.0.0.1") == pytest.approx(2.0)  # one failure back takes 2 s
    assert throttle.wait("10.0.0.2") == 0.0  # another address keeps its whole budget
    clock.now += 1.5
    assert throttle.wait("10.0.0.1") == pytest.approx(0.5)
    clock.now += 0.5
    assert throttle.wait("10.0.0.1") == 0.0


def test_running_out_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    throttle = FailureThrottle(rate=1, burst=2, clock=Clock())
    with caplog.at_level(logging.WARNING, logger="command_center.throttle"):
        for _ in range(5):
            throttle.failed("10.0.0.1")
    assert [r.getMessage() for r in caplog.records] == [
        "10.0.0.1 ran out of failed authentications (2 at once, then 1 a second); its requests "
        "are refused (429) meanwhile"]


def test_the_table_stays_bounded_under_an_address_spray() -> None:
    clock = Clock()
    throttle = FailureThrottle(rate=1, burst=1, capacity=100, clock=clock)
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle._buckets) <= 100
    assert throttle.wait("10.0.3.231") > 0  # the latest are still remembered
    clock.now += 5  # every bucket refilled: the next newcomer clears them all
    throttle.failed("192.0.2.1")
    assert len(throttle._buckets) <= 100 and throttle.wait("192.0.2.1") > 0


def test_a_limit_that_refills_never_is_refused() -> None:
    with pytest.raises(ValueError, match="rate > 0 and burst >= 1"):
        FailureThrottle(rate=0, burst=5)


def test_access_log_lines_of_refused_requests_are_dropped() -> None:
    throttle = FailureThrottle(rate=1, burst=1, clock=Clock())
    throttle.failed("10.0.0.1")
    quiet = QuietRefusals(throttle)

    def line(client: str, status: int) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                                 '%s - "%s %s HTTP/%s" %d', (client, "GET", "/", "1.1", status),
                                 None)

    assert not quiet.filter(line("10.0.0.1:5000", 429))
    assert quiet.filter(line("10.0.0.1:5000", 401))
    assert quiet.filter(line("10.0.0.2:5000", 429))  # a feed's own rate limit stays logged
