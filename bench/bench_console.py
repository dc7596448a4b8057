"""The web console in Chromium: how soon an event shows in the page, and how soon a busy console paints.

    .venv/bin/python -m bench.bench_console [--events 300] [--open 2000] [--loads 5]

a. Append → DOM. Each of `--events` incidents is reported (`POST /api/incidents`) while a township
   console is open in headless Chromium and a plain websocket client (Python `websockets`, the same
   console protocol) follows the same center. The clock starts just before the POST; the page
   records (in the page, with a MutationObserver on the queue's rows) when the row appears, the
   websocket client when the delta carrying it arrives. Both clocks are this machine's wall clock.
   Each case is rejected once both saw it, so the queue stays small. Reported: p50/p99 of both,
   and the ratio of the page's p99 to the websocket client's (target: within 2×).
b. First full paint. With `--open` incidents open under the city, the city console is loaded
   `--loads` times; the page records when the connection is open, the queue's rows, the counts and
   the map's grids are all drawn (performance.now() from navigation start). Baseline in the same
   run: the same page for a center with no incidents (target: under 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench._server import RunningServer, start_server

TOWNSHIP = "130706001"
EMPTY_TOWNSHIP = "130706203"

OBSERVER = """() => {
  window.__seen = {};
  const list = document.getElementById('open-list');
  new MutationObserver((records) => {
    const now = performance.timeOrigin + performance.now();
    for (const r of records) for (const n of r.addedNodes) {
      if (n.dataset && n.dataset.id && !(n.dataset.id in window.__seen)) window.__seen[n.dataset.id] = now;
    }
  }).observe(list, { childList: true });
}"""

PAINTED = """(expected) => new Promise((resolve) => {
  const check = () => {
    const rows = document.querySelectorAll('#open-list tr[data-id]').length;
    const grids = document.querySelectorAll('#map path.map-grid').length;
    const open = document.getElementById('conn-status').dataset.state === 'open';
    const counts = document.querySelector('#counts .count-value');
    if (open && rows >= expected && grids > 0 && counts && counts.textContent !== '–') resolve(performance.now());
    else requestAnimationFrame(check);
  };
  check();
})"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class WsFollower:
    """A plain console-protocol client in a thread: when each case's queue entry arrived."""

    def __init__(self, server: RunningServer, center: str) -> None:
        self.url = server.console_url(center)
        self.seen: dict[str, float] = {}
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        if not self.ready.wait(20):
            raise RuntimeError("the websocket client did not get its snapshot")

    async def _run(self) -> None:
        import websockets

        async with websockets.connect(self.url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "hello"}))
            while not self.stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.time()
                frame = json.loads(raw)
                if frame.get("type") == "snapshot":
                    self.ready.set()
                for change in frame.get("changes") or []:
                    path = change.get("path") or []
                    if change.get("op") == "set" and len(path) == 2 and path[0] == "queue":
                        self.seen.setdefault(path[1], now)


def append_to_dom(server: RunningServer, browser: Any, events: int) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(f"{server.url}/?center={TOWNSHIP}#token={server.token}")
    page.wait_for_selector("#conn-status[data-state=open]", timeout=20000)
    page.evaluate(OBSERVER)
    follower = WsFollower(server, TOWNSHIP)
    grid = server.embedded.jurisdiction.grids_under(TOWNSHIP)[0].id
    dom: list[float] = []
    ws: list[float] = []
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
        for i in range(events):
            t0 = time.time()
            made = client.post("/api/incidents", json={
                "source": "hotline", "category": "noise", "grid": grid, "description": f"bench {i}"})
            made.raise_for_status()
            case = made.json()["id"]
            deadline = time.monotonic() + 20
            while True:
                shown = page.evaluate(f"window.__seen[{case!r}] || 0")
                if shown and case in follower.seen:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"case {case} did not show within 20 s")
                time.sleep(0.005)
            dom.append(shown / 1000 - t0)
            ws.append(follower.seen[case] - t0)
            client.post(f"/api/incidents/{case}/reject", json={"reason": "bench"}).raise_for_status()
    follower.stop.set()
    page.close()
    ms = 1000.0
    return {"dom_p50": percentile(dom, 50) * ms, "dom_p99": percentile(dom, 99) * ms,
            "ws_p50": percentile(ws, 50) * ms, "ws_p99": percentile(ws, 99) * ms}


def first_paint(server: RunningServer, browser: Any, center: str, expected: int, loads: int) -> float:
    times = []
    for _ in range(loads):
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{server.url}/?center={center}#token={server.token}")
        times.append(float(page.evaluate(PAINTED, expected)))
        page.close()
    return statistics.median(times)


def fill(server: RunningServer, n: int) -> None:
    grids = [g.id for g in server.embedded.jurisdiction.grids() if g.id[:9] != EMPTY_TOWNSHIP]
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
        for i in range(n):
            client.post("/api/incidents", json={
                "source": "hotline", "category": "noise", "grid": grids[i % len(grids)],
                "severity": "major" if i % 50 == 0 else "routine",
                "description": f"open case {i}"}).raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--open", type=int, default=2000)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--chromium", default=os.environ.get("LINKAGE_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                a = append_to_dom(server, browser, args.events)
                print(f"a. append -> page DOM over {args.events} events: p50 {a['dom_p50']:.1f} ms, "
                      f"p99 {a['dom_p99']:.1f} ms")
                print(f"   append -> websocket client (baseline): p50 {a['ws_p50']:.1f} ms, "
                      f"p99 {a['ws_p99']:.1f} ms")
                print(f"   ratio DOM/websocket: p50 {a['dom_p50'] / a['ws_p50']:.2f}x, "
                      f"p99 {a['dom_p99'] / a['ws_p99']:.2f}x (target <= 2x)")
                empty = first_paint(server, browser, EMPTY_TOWNSHIP, 0, args.loads)
                t0 = time.monotonic()
                fill(server, args.open)
                print(f"b. {args.open} open incidents reported in {time.monotonic() - t0:.0f} s")
                root = server.embedded.jurisdiction.root.id
                busy = first_paint(server, browser, root, min(args.open, 200), args.loads)
                print(f"   first full paint, city console with {args.open} open: {busy:.0f} ms "
                      f"(median of {args.loads}); empty township (baseline): {empty:.0f} ms; "
                      f"ratio {busy / empty:.2f}x (target < 1000 ms)")
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
