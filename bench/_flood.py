"""A bounded flood of requests with bad bearer tokens, from a chosen loopback address.

Run as a process of its own (`python -m bench._flood ...`) so that generating it takes no time
from the process that measures the officer's latency. Raw HTTP/1.1 over keep-alive connections,
pipelined in batches, at `--rate` requests a second during `--rounds` windows of `--pulse`
seconds, each followed by as long a quiet window: a measurement taken meanwhile can compare
flooded and quiet moments of the same minute. Prints one JSON line before sending,
{"start": <time.monotonic() of the first window>, "pulse": p, "rounds": r} (the clock is the
machine's, shared by its processes), then {"sent": n, "statuses": {...}} at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections import Counter

BAD_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad-signature"


_STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


async def _count_answers(reader: asyncio.StreamReader, expected: int,
                         statuses: Counter[int]) -> None:
    # Counted by their status lines in bulk reads: parsing each answer would cost more than the
    # server spends refusing it. A status line split between reads is found in the carried tail
    # (12 bytes: one byte short of a whole status line, which is therefore never counted twice).
    seen, carry = 0, b""
    while seen < expected:
        chunk = await reader.read(1 << 16)
        if not chunk:
            raise ConnectionError(f"the server closed the connection after {seen} answers")
        data = carry + chunk
        for status in _STATUS.findall(data):
            statuses[int(status)] += 1
            seen += 1
        carry = data[-12:]


async def _connection(host: str, port: int, source: str, request: bytes, batches: list[float],
                      batch: int, statuses: Counter[int]) -> None:
    # Pipelined a batch at a time, so that the flood's own cost stays small and the machine's
    # cores go to the server, and sent on schedule whether or not the answers keep up.
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))

    async def send() -> None:
        for at in batches:
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request * batch)
            await writer.drain()

    sending = asyncio.create_task(send())
    try:
        await _count_answers(reader, len(batches) * batch, statuses)
        await sending
    finally:
        sending.cancel()
        writer.close()


async def flood(host: str, port: int, source: str, path: str, rate: float, pulse: float,
                rounds: int, connections: int = 4, batch: int = 10) -> dict[str, object]:
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Authorization: Bearer {BAD_TOKEN}\r\n\r\n").encode()
    start = time.monotonic() + 0.3
    interval = connections * batch / rate  # each connection sends a batch this often
    per_window = int(rate * pulse) // (connections * batch)
    schedules: list[list[float]] = [[] for _ in range(connections)]
    for window in range(rounds):
        opens = start + 2 * window * pulse
        for c, schedule in enumerate(schedules):
            schedule.extend(opens + (c / connections + i) * interval for i in range(per_window))
    print(json.dumps({"start": start, "pulse": pulse, "rounds": rounds}), flush=True)
    statuses: Counter[int] = Counter()
    await asyncio.gather(*(_connection(host, port, source, request, schedule, batch, statuses)
                           for schedule in schedules))
    return {"sent": sum(statuses.values()), "statuses": dict(statuses)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", default="127.0.0.2", help="local address to send from")
    parser.add_argument("--path", default="/api/centers")
    parser.add_argument("--rate", type=float, default=2000, help="requests a second while on")
    parser.add_argument("--pulse", type=float, default=1.0, help="seconds on, then as many off")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    result = asyncio.run(flood(args.host, args.port, args.source, args.path, args.rate,
                               args.pulse, args.rounds))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
