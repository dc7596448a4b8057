"""An open-loop HTTP load generator, run as a process of its own (`python -m bench._open_loop`).

wrk is closed-loop: a connection waits for its answer before it sends again, so a slow server
is offered less and the queueing it causes never shows in the latencies (coordinated
omission). Here every send time is fixed in advance (`--rate` requests a second for
`--seconds`), each request goes out on any idle keep-alive connection at its time (a new
connection is opened when none is idle, up to `--max-connections`), and a request's latency
runs **from its scheduled send time** to the last byte of its answer: a send that went out
late (no connection free, or this process late to wake) counts its wait.

Raw HTTP/1.1 with the requests encoded before the clock starts; an answer is read by its status
line and Content-Length only (no chunked bodies: the server under test answers with a length).

    python -m bench._open_loop --port P --rate 1000 --seconds 10 --path /api/incidents \\
        --method POST --header "Authorization: Bearer T" --body '{"...": 1}'
    python -m bench._open_loop --port P --rate 100 --seconds 10 --requests FILE [--log FILE]

`--requests FILE`: JSON lines, each {"method", "path", "headers": {...}, "body": "..."}; the
n-th send uses line n modulo their number (one line per send gives every send its own body).
`--log FILE`: one JSON line per send, [index, scheduled, answered, status] in wall-clock
seconds (`time.time()`, comparable with other processes' clocks on this machine; answered and
status null when no answer came).

Prints one JSON line at the end: offered rate, sent, answered, statuses, late sends (more than
`--late-ms` after their time), connections opened, latency p50/p90/p99/p99.9/max in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def schedule(start: float, rate: float, seconds: float) -> list[float]:
    """Send times: `rate` a second from `start`, evenly spaced, for `seconds`."""
    count = round(rate * seconds)
    return [start + i / rate for i in range(count)]


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of an ascending sequence; nan when it is empty."""
    if not ordered:
        return float("nan")
    rank = math.ceil(q * len(ordered) - 1e-9)  # the smallest value with a share q at or below it
    return ordered[min(len(ordered), max(1, rank)) - 1]


def summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    return {"p50_ms": percentile(ordered, 0.5), "p90_ms": percentile(ordered, 0.9),
            "p99_ms": percentile(ordered, 0.99), "p999_ms": percentile(ordered, 0.999),
            "max_ms": ordered[-1] if ordered else float("nan")}


def parse_head(head: bytes) -> tuple[int, int]:
    """(status, Content-Length) of an answer's head, up to and including the blank line."""
    status = int(head[9:12])
    length = 0
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 2)
        length = int(lower[at + 17:end])
    return status, length


def encode(method: str, path: str, host: str, headers: dict[str, str], body: str) -> bytes:
    raw = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if raw or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(raw)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


@dataclass
class Run:
    """What one run saw."""

    scheduled: list[float]
    answered: list[float | None] = field(default_factory=list)
    status: list[int | None] = field(default_factory=list)
    late: int = 0
    late_max_ms: float = 0.0
    opened: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.answered = [None] * len(self.scheduled)
        self.status = [None] * len(self.scheduled)


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def run(host: str, port: int, requests: list[bytes], rate: float, seconds: float,
              connections: int, max_connections: int, late_ms: float,
              lead: float = 0.5) -> tuple[Run, float]:
    """Send on schedule; returns the run and the wall-clock time of the schedule's start."""
    idle: deque[Conn] = deque()
    for _ in range(connections):
        idle.append(await asyncio.open_connection(host, port))
    loop = asyncio.get_running_loop()
    start = loop.time() + lead
    wall_offset = time.time() - loop.time()
    times = schedule(start, rate, seconds)
    result = Run(times)
    result.opened = connections
    freed = asyncio.Event()
    pending: set[asyncio.Task[None]] = set()

    async def exchange(i: int, conn: Conn) -> None:
        reader, writer = conn
        try:
            writer.write(requests[i % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            status, length = parse_head(head)
            if length:
                await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as e:
            result.errors[type(e).__name__] += 1
            writer.close()
            return
        result.answered[i] = loop.time()
        result.status[i] = status
        idle.append(conn)
        freed.set()

    for i, at in enumerate(times):
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        while not idle:
            if result.opened < max_connections:
                result.opened += 1
                try:
                    idle.append(await asyncio.open_connection(host, port))
                except OSError as e:
                    result.errors[type(e).__name__] += 1
                continue
            freed.clear()
            await freed.wait()
        lateness = (loop.time() - at) * 1000
        if lateness > late_ms:
            result.late += 1
            result.late_max_ms = max(result.late_max_ms, lateness)
        task = asyncio.create_task(exchange(i, idle.popleft()))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=30)
    for task in pending:
        task.cancel()
    while idle:
        idle.popleft()[1].close()
    # To wall-clock time, comparable across the processes of this machine.
    result.scheduled = [t + wall_offset for t in times]
    result.answered = [None if t is None else t + wall_offset for t in result.answered]
    return result, start + wall_offset


def report(result: Run, rate: float, seconds: float) -> dict[str, Any]:
    latencies = [(done - at) * 1000 for at, done in zip(result.scheduled, result.answered, strict=True)
                 if done is not None]
    statuses = Counter(s for s in result.status if s is not None)
    return {"offered_rate": rate, "seconds": seconds, "sent": len(result.scheduled),
            "answered": len(latencies), "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "late": result.late, "late_max_ms": round(result.late_max_ms, 1),
            "connections": result.opened, "errors": dict(result.errors),
            **{k: round(v, 2) for k, v in summary(latencies).items()}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench._open_loop")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, required=True, help="requests a second, offered")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--method", default="GET")
    p.add_argument("--path", default="/healthz")
    p.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    p.add_argument("--body", default="")
    p.add_argument("--requests", type=Path, help="JSON lines of requests (see the docstring)")
    p.add_argument("--connections", type=int, default=32, help="opened before the start")
    p.add_argument("--max-connections", type=int, default=512)
    p.add_argument("--late-ms", type=float, default=2.0,
                   help="a send this much after its time counts as late")
    p.add_argument("--log", type=Path, help="one JSON line per send")
    args = p.parse_args(argv)
    host = f"{args.host}:{args.port}"
    if args.requests:
        requests = []
        for line in args.requests.read_text().splitlines():
            spec = json.loads(line)
            requests.append(encode(spec.get("method", "POST"), spec["path"], host,
                                   spec.get("headers", {}), spec.get("body", "")))
    else:
        headers = dict(h.split(": ", 1) for h in args.header)
        if args.body and "Content-Type" not in headers:
            headers["Content-Type"] = "application/json"
        requests = [encode(args.method, args.path, host, headers, args.body)]
    result, start = asyncio.run(run(args.host, args.port, requests, args.rate, args.seconds,
                                    args.connections, args.max_connections, args.late_ms))
    if args.log:
        with args.log.open("w") as out:
            for i, (at, done) in enumerate(zip(result.scheduled, result.answered, strict=True)):
                out.write(json.dumps([i, at, done, result.status[i]]) + "\n")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({**report(result, args.rate, args.seconds), "start": start,
                      "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}), flush=True)


if __name__ == "__main__":
    main()
