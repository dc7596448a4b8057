"""A bounded flood of requests with bad bearer tokens, from a chosen loopback address.

Run as a process of its own (`python -m tests.e2e.flood ...`) so that generating it takes no time
from the process that measures the officer's latency. Raw HTTP/1.1 over keep-alive connections,
pipelined in batches, paced to `--rate` requests a second for `--seconds`; prints one JSON line: {"started": true} once
the first answer came, then {"sent": n, "statuses": {...}, "seconds": s} at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def _connection(host: str, port: int, source: str, request: bytes, batches: list[float],
                      batch: int, statuses: Counter[int], started: asyncio.Event) -> None:
    # Requests are pipelined a batch at a time (the flood's own cost stays small, so that the
    # machine's cores go to the server being flooded) and sent on schedule whether or not the
    # answers keep up: the server gets the whole rate.
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
        for _ in range(len(batches) * batch):
            statuses[await _read_response(reader)] += 1
            started.set()
        await sending
    finally:
        sending.cancel()
        writer.close()


async def flood(host: str, port: int, source: str, path: str, rate: float, seconds: float,
                connections: int, batch: int = 10) -> dict[str, object]:
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad-signature\r\n"
               "\r\n").encode()
    start = time.monotonic() + 0.05
    per_connection = int(rate * seconds) // (connections * batch)
    interval = connections * batch / rate  # each connection sends a batch this often
    statuses: Counter[int] = Counter()
    started = asyncio.Event()
    tasks = [asyncio.create_task(_connection(
        host, port, source, request,
        [start + (c / connections + i) * interval for i in range(per_connection)], batch,
        statuses, started)) for c in range(connections)]
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait({waiting, *tasks}, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        if task.done():
            task.result()  # a connection that failed before any answer: fail, do not hang
    print(json.dumps({"started": True}), flush=True)
    await asyncio.gather(*tasks)
    return {"sent": sum(statuses.values()), "statuses": dict(statuses),
            "seconds": time.monotonic() - start}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", default="127.0.0.2", help="local address to send from")
    parser.add_argument("--path", default="/api/centers")
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=10, help="requests pipelined at once")
    args = parser.parse_args()
    result = asyncio.run(flood(args.host, args.port, args.source, args.path, args.rate,
                               args.seconds, args.connections, args.batch))
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
