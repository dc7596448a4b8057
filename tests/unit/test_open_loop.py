"""The pure parts of the open-loop load generator (bench/_open_loop.py): no sockets, no clock."""

from __future__ import annotations

import math

from bench._open_loop import Run, encode, parse_head, percentile, report, schedule, summary


def test_schedule_is_evenly_spaced_from_the_start() -> None:
    times = schedule(100.0, 4, 2.5)
    assert times == [100.0, 100.25, 100.5, 100.75, 101.0, 101.25, 101.5, 101.75, 102.0, 102.25]
    assert len(schedule(0.0, 1000, 10)) == 10_000
    assert schedule(0.0, 1000, 0) == []


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1 .. 100
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.999) == 100.0
    assert percentile(values, 1.0) == 100.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))
    # 1,000 values: p99.9 is the 999th, not the largest
    assert percentile([float(v) for v in range(1000)], 0.999) == 998.0


def test_summary_sorts_first() -> None:
    found = summary([5.0, 1.0, 3.0, 2.0, 4.0])
    assert found["p50_ms"] == 3.0 and found["max_ms"] == 5.0 and found["p99_ms"] == 5.0


def test_parse_head_reads_status_and_length() -> None:
    head = (b"HTTP/1.1 201 Created\r\ndate: x\r\nContent-Length: 412\r\n"
            b"content-type: application/json\r\n\r\n")
    assert parse_head(head) == (201, 412)
    assert parse_head(b"HTTP/1.1 204 No Content\r\nserver: uvicorn\r\n\r\n") == (204, 0)
    assert parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n") == (200, 2)


def test_encode_sets_the_length_of_a_body() -> None:
    raw = encode("POST", "/api/incidents", "127.0.0.1:8000", {"X-API-Key": "k"}, '{"a":"é"}')
    head, body = raw.split(b"\r\n\r\n")
    assert head.split(b"\r\n") == [b"POST /api/incidents HTTP/1.1", b"Host: 127.0.0.1:8000",
                                   b"X-API-Key: k", b"Content-Length: 10"]
    assert body == '{"a":"é"}'.encode()
    assert b"Content-Length" not in encode("GET", "/healthz", "h", {}, "")


def test_latency_counts_from_the_scheduled_time_and_unanswered_sends_are_counted() -> None:
    run = Run([10.0, 10.5, 11.0])
    run.answered = [10.002, None, 11.3]
    run.status = [201, None, 201]
    out = report(run, 2, 1.5)
    assert out["sent"] == 3 and out["answered"] == 2 and out["statuses"] == {"201": 2}
    assert out["p50_ms"] == 2.0 and out["max_ms"] == 300.0


def test_fanout_histogram_and_plan() -> None:
    from bench.bench_embedded import CITY, DISTRICT, Histogram, fanout_plan

    h = Histogram()
    for ms in range(1, 101):  # 1 .. 100 ms
        h.add(ms / 1000 - 0.00001)  # just under each whole ms: its 0.1 ms bucket ends on it
    assert h.pct(0.5) == 50.0 and h.pct(0.99) == 99.0 and h.summary()["max_ms"] == 100.0
    h.add(-1.0)  # a clock step backwards counts as 0
    assert h.n == 101 and h.pct(0.0) == 0.1
    townships = ["t1", "t2", "t3"]
    plan = fanout_plan(1000, townships)
    assert plan.count(CITY) == 333 and plan.count(DISTRICT) == 333
    assert [plan.count(t) for t in townships] == [112, 111, 111]
    assert fanout_plan(3, townships) == [CITY, DISTRICT, *townships]
