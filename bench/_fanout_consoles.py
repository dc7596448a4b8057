"""Client side of the fan-out-under-load benchmark (#17 target 3), in a process of its own.

    python -m bench._fanout_consoles WS_URL TOKEN OUT CENTER:COUNT[,CENTER:COUNT...]

Opens COUNT consoles on each CENTER (`WS_URL/ws/console?center=…&token=…`, without
permessage-deflate, so that this process spends no CPU inflating), prints "ready" once every
console holds its snapshot, then records for every frame a console receives its wall-clock
time (`time.time()`) and the view's `position` it carries (the last notification id folded into
that center: a delta's `set ["position"]`, a snapshot's `view.position`). On a line on stdin it
closes the consoles and writes OUT (JSON): {"consoles": [{"center", "t": [...], "p": [...]}],
"snapshots": resyncs after the first snapshot, "without_position": deltas that carried none}.
The frames are not parsed beyond that (one `rfind` per delta).
"""

from __future__ import annotations

import asyncio
import sys
import time
from array import array
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

POSITION = '["position"],"value":'


class Console:
    def __init__(self, center: str) -> None:
        self.center = center
        self.t = array("d")
        self.p = array("q")
        self.snapshots = 0
        self.without_position = 0


async def _open(url: str) -> tuple[ClientConnection, dict[str, Any]]:
    for attempt in range(20):
        try:
            ws = await connect(url, open_timeout=60, max_size=None, ping_interval=None,
                               compression=None)
            break
        except OSError:
            await asyncio.sleep(0.2 * (attempt + 1))
    else:
        raise RuntimeError(f"cannot connect to {url}")
    frame = orjson.loads(await ws.recv())
    assert frame["type"] == "snapshot", frame
    return ws, frame


async def _follow(ws: ClientConnection, console: Console) -> None:
    t, p = console.t, console.p
    try:
        async for message in ws:
            now = time.time()
            text = message if isinstance(message, str) else message.decode()
            if text.startswith('{"type":"delta"'):
                at = text.rfind(POSITION)
                if at < 0:
                    console.without_position += 1
                    continue
                end = at + len(POSITION)
                stop = end
                while text[stop].isdigit():
                    stop += 1
                t.append(now)
                p.append(int(text[end:stop]))
            else:
                frame = orjson.loads(text)
                if frame.get("type") == "snapshot":
                    console.snapshots += 1
                    t.append(now)
                    p.append(int(frame["view"].get("position", 0)))
    except Exception:  # a closed connection ends the record
        return


async def main(base: str, token: str, out: Path, spec: str) -> None:
    plan = [(c, int(n)) for c, n in (item.split(":") for item in spec.split(","))]
    wanted = [center for center, n in plan for _ in range(n)]
    consoles: list[Console] = []
    sockets: list[ClientConnection] = []
    followers: list[asyncio.Task[None]] = []
    batch = 250  # below the listen backlog
    for start in range(0, len(wanted), batch):
        opened = await asyncio.gather(*(_open(f"{base}/ws/console?center={c}&token={token}")
                                        for c in wanted[start:start + batch]))
        for center, (ws, snapshot) in zip(wanted[start:start + batch], opened, strict=True):
            console = Console(center)
            console.t.append(time.time())
            console.p.append(int(snapshot["view"].get("position", 0)))
            consoles.append(console)
            sockets.append(ws)
            followers.append(asyncio.create_task(_follow(ws, console)))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for start in range(0, len(sockets), 500):
        await asyncio.gather(*(ws.close() for ws in sockets[start:start + 500]))
    await asyncio.gather(*followers)
    out.write_bytes(orjson.dumps({
        "consoles": [{"center": c.center, "t": c.t.tolist(), "p": c.p.tolist()}
                     for c in consoles],
        "snapshots": sum(c.snapshots for c in consoles),
        "without_position": sum(c.without_position for c in consoles)}))
    print("written", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]))
