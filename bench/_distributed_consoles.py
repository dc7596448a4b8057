"""Client side of the 10,000-console benchmark, in its own process.

    python -m bench._distributed_consoles URL N [--echo] [--frame]

Opens N websocket connections to URL (a hub console URL, or a bare echo server with
--echo), prints "ready" once every console holds its snapshot (or is connected), then,
for a hub, waits for the next delta on every connection and prints one JSON line: the
wall-clock time each connection received it (with --frame, then the delta's text as a JSON
string on a line of its own).
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
from websockets.asyncio.client import ClientConnection, connect


async def _open(url: str, echo: bool) -> ClientConnection:
    for attempt in range(20):
        try:
            ws = await connect(url, open_timeout=60, max_size=None, ping_interval=None)
            break
        except OSError:
            await asyncio.sleep(0.2 * (attempt + 1))
    else:
        raise RuntimeError(f"cannot connect to {url}")
    if not echo:
        frame = orjson.loads(await ws.recv())
        assert frame["type"] == "snapshot", frame
    return ws


async def _next_delta(ws: ClientConnection, seen: list[str | bytes]) -> float:
    while True:
        message = await ws.recv()
        frame = orjson.loads(message)
        if frame["type"] == "delta":
            if not seen:
                seen.append(message)
            return time.time()


async def main(url: str, n: int, echo: bool) -> None:
    sockets: list[ClientConnection] = []
    batch = 250  # below the listen backlog
    for start in range(0, n, batch):
        sockets += await asyncio.gather(*(_open(url, echo) for _ in range(min(batch, n - start))))
    print("ready", flush=True)
    if echo:
        sys.stdin.readline()  # hold the connections until told
    else:
        seen: list[str | bytes] = []
        times = await asyncio.gather(*(_next_delta(ws, seen) for ws in sockets))
        print(orjson.dumps(times).decode(), flush=True)
        if "--frame" in sys.argv[3:]:  # the delta's text too, on a line of its own
            print(orjson.dumps(seen[0] if isinstance(seen[0], str) else seen[0].decode()).decode(),
                  flush=True)
        sys.stdin.readline()
    for start in range(0, len(sockets), 1000):
        await asyncio.gather(*(ws.close() for ws in sockets[start:start + 1000]))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), "--echo" in sys.argv[3:]))
