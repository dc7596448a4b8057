"""Issue #17, embedded side: each target against a reference measured in the same run.

1. reports over HTTP: `POST /api/incidents` with wrk at 32 connections, against the same
   server's `GET /healthz` (wrk, same connections, same duration).
   The whole loop over HTTP (report ... close, 32 clients, wrk) against the issue's peer: plain
   eventsourcing saving one trivial event per command, in process, on the same SQLite file.
1 (open loop). a command's p99 at a fixed offered rate: `POST /api/incidents` offered at 1,000/s
   for 10 s by bench/_open_loop.py (send times fixed in advance, latency from each scheduled
   send, so queueing shows: wrk is closed-loop and hides it), after a sweep at 250 and 500/s;
   reference: the same generator at the same rate on the same server's `GET /healthz` (a fresh
   server per rate). Goal: p99 <= 50 ms at 1,000/s.
1b. group commit in process: reports from 32 threads against the same reports one at a time.
2. fold off the request loop: an officer's command p99 (one client, sequential reports) while
   a 10,000-alert burst is ingested, against the same client's p99 on the quiet server.
3. idle consoles: resident memory per console on `linkage serve` against a bare websockets echo
   server's per connection, and the p99 time for one delta to reach all of them.
3 (under load). append -> console: 1,000 consoles (a third on the city, a third on the district
   130706, the rest over its six townships, so every event reaches consoles at each level) in 2
   client processes (bench/_fanout_consoles.py), while 1,000 events/s are appended for 10 s by
   bench/_open_loop.py: alert batches of 10 through `POST /api/ingest/alerts`, every 10th request a
   report instead. Every event carries a tag (alert id, report description); after the run the
   events are found in the server's events.db by tag, which gives each its notification id, and a
   console has an event when a frame carrying `position` >= that id arrives. Latency per
   (console, event) pair from the event's scheduled send (and from its 2xx), p50/p99/max over all
   pairs and per level. Reference: the same stream (1 s warm-up, then 10 s) to one console per
   center of the three levels (8), on a fresh server. Goal: p99 <= 50 ms.
5. replay: `runner.rebuild()` (what `linkage replay` runs) of every notification, against the
   raw read and JSON decode of the same notifications; in wall time, and in the CPU time of the
   thread that runs both (which a loaded machine disturbs less).

Servers are `linkage serve` child processes. `--compare DIR` runs each target a second time
on the code checked out in DIR (e.g. a detached worktree of main), in the same run, so old and
new are measured under the same load of this shared machine (the load generators and console
clients are always this checkout's).

    python -m bench.bench_embedded [--only http,loop,open,group,burst,consoles,fanout,replay]
        [--compare DIR] [--open-rates 250,500,1000 --open-seconds 10]
        [--fanout-consoles 1000 --fanout-rate 1000 --fanout-seconds 10 --fanout-procs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "var" / "bench" / "embedded.json"
GRID = "130706001001001"
CAMERA = "cam-130706001001001-1"
REPORT = {"source": "hotline", "category": "noise", "grid": GRID,
          "description": "夜间施工噪音扰民 / construction noise at night"}
WRK_POST = """wrk.method = "POST"
wrk.body = '{"source":"hotline","category":"noise","grid":"130706001001001","description":"noise"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("LINKAGE_BENCH_TOKEN")
"""

# The five-step loop over HTTP, one incident at a time per connection (wrk -t N -c N: each wrk
# thread has one connection and its own Lua state). A refused step is retried.
WRK_LOOP = """local steps = {
  {"accept", '{}'},
  {"dispatch", '{"assignee":{"kind":"department","id":"housing"}}'},  -- due: the SLA policy's
  {"acknowledge", '{}'},
  {"resolve", '{"outcome":"handled"}'},
  {"return-visit", '{"satisfaction":5,"comment":""}'},
  {"close", '{}'},
}
local report = '{"source":"hotline","category":"noise","grid":"130706001001001","description":"noise"}'
local id = nil
local step = 0
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("LINKAGE_BENCH_TOKEN")
request = function()
  if id == nil then
    return wrk.format("POST", "/api/incidents", nil, report)
  end
  return wrk.format("POST", "/api/incidents/" .. id .. "/" .. steps[step][1], nil, steps[step][2])
end
response = function(status, headers, body)
  if id == nil then
    if status == 201 then
      id = string.match(body, '"id":"([%x%-]+)"')
      step = 1
    end
  elseif status == 200 then
    step = step + 1
    if step > #steps then
      id = nil
      step = 0
    end
  end
end
"""

console = Console(width=max(Console().width, 120))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, url: str, headers: dict[str, str], feed: dict[str, str],
                 token: str, pid: int) -> None:
        self.url, self.headers, self.feed, self.token = url, headers, feed, token
        self.pid = pid


CREDENTIALS = """
import sys
from pathlib import Path
from infra.loaders.jurisdiction import load_jurisdiction
from infra.security.api_keys import ApiKeys
from infra.security.tokens import Tokens
from infra.settings import Settings
s = Settings().with_(data_dir=Path(sys.argv[1]))
root = load_jurisdiction(s.jurisdiction).root.id
print(Tokens(s).issue("bench", "city_officer", root))
print(ApiKeys.for_settings(s).issue("bench-feed")[1])
"""


@contextmanager
def serve(code: Path, data_dir: Path) -> Iterator[Served]:
    """`linkage serve` from the checkout `code`, on a fresh data dir."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(code), "LINKAGE_INGEST_RATE": "1000000",
           "LINKAGE_WS_ALLOW_MISSING_ORIGIN": "true",  # the bench clients send no Origin
           "LINKAGE_ACCESS_LOG": "false",  # as `make run`: no line per request
           "LINKAGE_INGEST_BURST": "1000000"}
    process = subprocess.Popen([sys.executable, "-m", "infra.cli", "serve", "--port", str(port),
                                "--data-dir", str(data_dir)], cwd=code, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"linkage serve from {code} did not start")
            time.sleep(0.2)
        out = subprocess.run([sys.executable, "-c", CREDENTIALS, str(data_dir)], cwd=code,
                             env=env, capture_output=True, text=True, check=True).stdout.split()
        token, key = out[0], out[1]
        yield Served(url, {"Authorization": f"Bearer {token}"}, {"X-API-Key": key}, token,
                     process.pid)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- 1. reports over HTTP against /healthz ------------------------------------------------

def wrk(url: str, seconds: int, connections: int, script: Path | None, token: str,
        threads: int = 2) -> float:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True,
                         env={**os.environ, "LINKAGE_BENCH_TOKEN": token}).stdout
    if re.search(r"Non-2xx", out):
        raise RuntimeError(f"wrk saw errors:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def bench_http(code: Path, work: Path, seconds: int) -> dict[str, float]:
    script = work / "post.lua"
    script.write_text(WRK_POST)
    with serve(code, work / f"http-{code.name}") as s:
        wrk(f"{s.url}/healthz", 2, 32, None, s.token)  # warm-up
        health = wrk(f"{s.url}/healthz", seconds, 32, None, s.token)
        reports = wrk(f"{s.url}/api/incidents", seconds, 32, script, s.token)
    return {"healthz_per_s": health, "reports_per_s": reports, "ratio": reports / health}


def bench_loop(code: Path, work: Path, seconds: int, peer_commands: int) -> dict[str, float]:
    """The whole loop over HTTP (32 clients, wrk), against the issue's peer: a plain eventsourcing
    application saving one trivial event per command, in process, on the same SQLite file."""
    from bench._baseline import baseline_app, baseline_command

    script = work / "loop.lua"
    script.write_text(WRK_LOOP)
    data = work / f"loop-{code.name}"
    with serve(code, data) as s:
        http = wrk(f"{s.url}/api/incidents", seconds, 32, script, s.token, threads=32)
    app = baseline_app(data / "events.db")  # the server's event store file (Settings.sqlite_path)
    try:
        for n in range(200):
            baseline_command(app, n)
        started = time.perf_counter()
        for n in range(peer_commands):
            baseline_command(app, 200 + n)
        peer = peer_commands / (time.perf_counter() - started)
    finally:
        app.close()
    return {"http_commands_per_s": http, "peer_commands_per_s": peer, "ratio": http / peer}


# -- 1b. group commit in process: 32 concurrent officers against one at a time -------------

def bench_group(work: Path, commands: int, threads: int) -> dict[str, float]:
    """Reports through IncidentService (decide, save) from `threads` threads, against the same
    reports one at a time from one thread, on the same SQLite file, interleaved 3 times."""
    from concurrent.futures import ThreadPoolExecutor

    from infra.bootstrap import build_service
    from infra.loaders.jurisdiction import load_jurisdiction
    from infra.settings import Settings

    settings = Settings().with_(data_dir=work / "group")
    service = build_service(settings, load_jurisdiction(settings.jurisdiction))
    officer: Any = {"user": "bench", "role": "admin", "center": None}

    def report(_: int) -> None:
        service.report(actor=officer, grid=GRID, source="hotline", category="noise",
                       severity="routine", description="noise")

    try:
        for i in range(200):  # warm-up
            report(i)
        rates: dict[str, list[float]] = {"serial": [], "group": []}
        stats = getattr(service.recorder, "group_stats", None)  # None: code without group commit
        batches = parts = 0
        for _ in range(3):
            started = time.perf_counter()
            for i in range(commands):
                report(i)
            rates["serial"].append(commands / (time.perf_counter() - started))
            before = (stats.batches, stats.parts) if stats else (0, 0)
            with ThreadPoolExecutor(threads) as pool:
                started = time.perf_counter()
                list(pool.map(report, range(commands)))
                rates["group"].append(commands / (time.perf_counter() - started))
            if stats:
                batches += stats.batches - before[0]
                parts += stats.parts - before[1]
    finally:
        service.close()
    serial, group = sorted(rates["serial"])[1], sorted(rates["group"])[1]
    return {"serial_per_s": serial, "group_per_s": group, "ratio": group / serial,
            "mean_batch": parts / batches if batches else float("nan")}


# -- 2. a command's p99 during a 10,000-alert burst ------------------------------------------

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def command_latencies(s: Served, stop: threading.Event, at_least: int) -> list[float]:
    out: list[float] = []
    with httpx.Client(base_url=s.url, headers=s.headers, timeout=30) as client:
        while not stop.is_set() or len(out) < at_least:
            started = time.perf_counter()
            response = client.post("/api/incidents", json=REPORT)
            out.append((time.perf_counter() - started) * 1000)
            if response.status_code != 201:
                raise RuntimeError(f"report failed: {response.status_code} {response.text}")
    return out


def positions(s: Served) -> tuple[float, float, float]:
    """(event store head, runner position, sealer position) from the server's /metrics (the
    sealer's from its lag where the server has no position gauge: main before this pass)."""
    text = httpx.get(f"{s.url}/metrics", timeout=10).text
    found = {m.group(1): float(m.group(2)) for m in re.finditer(
        r"^linkage_(event_store_head|runner_position|sealer_position|sealer_lag) (\S+)$",
        text, re.M)}
    head = found.get("event_store_head", 0.0)
    sealed = found.get("sealer_position", head - found.get("sealer_lag", 0.0))
    return head, found.get("runner_position", 0.0), sealed


def bench_burst(code: Path, work: Path, alerts: int, quiet_s: float,
                reps: int = 3) -> dict[str, float]:
    """An officer's reports, one at a time, on the quiet server and then during `reps` bursts
    of `alerts` alerts each. A burst lasts until its alerts are stored *and* folded and sealed
    (the runner's and the sealer's positions past the store's head when the last batch was
    answered): the fold is what used to hold the loop."""
    with serve(code, work / f"burst-{code.name}") as s:
        stop = threading.Event()
        timer = threading.Timer(quiet_s, stop.set)
        timer.start()
        quiet = command_latencies(s, stop, 50)
        during: list[float] = []
        stored_s: list[float] = []
        caught_up_s: list[float] = []
        for rep in range(reps):
            stop = threading.Event()
            bodies = [orjson.dumps({"alerts": [
                {"id": f"burst-{rep}-{b}-{k}", "camera": CAMERA, "label": "person",
                 "score": 0.7, "start_time": 1_800_000_000.0 + rep * 100_000 + b * 1000 + k}
                for k in range(500)]}) for b in range(alerts // 500)]
            failures: list[str] = []
            started = time.perf_counter()

            def burst(bodies: list[bytes] = bodies, stop: threading.Event = stop,
                      failures: list[str] = failures, started: float = started) -> None:
                try:
                    with httpx.Client(base_url=s.url, headers={
                            **s.feed, "Content-Type": "application/json"}, timeout=60) as c:
                        for body in bodies:
                            r = c.post("/api/ingest/alerts", content=body)
                            if r.status_code != 200:
                                failures.append(f"{r.status_code} {r.text[:200]}")
                    stored_s.append(time.perf_counter() - started)
                    # Until the runner and the sealer have passed the last alert: the officer's
                    # reports keep coming, so a lag of 0 is luck. Every 0.05 s: a /metrics
                    # render takes the server's loop ~2 ms, part of what the officer waits for.
                    deadline = time.monotonic() + 120
                    stored = positions(s)[0]
                    while min(positions(s)[1:]) < stored and time.monotonic() < deadline:
                        time.sleep(0.05)
                    caught_up_s.append(time.perf_counter() - started)
                finally:
                    stop.set()

            feeder = threading.Thread(target=burst)
            feeder.start()
            during += command_latencies(s, stop, 50)
            feeder.join()
            if failures:
                raise RuntimeError(f"alert batches failed: {failures[:3]}")
            time.sleep(1.0)
    return {"quiet_p50_ms": pct(quiet, 0.5), "quiet_p99_ms": pct(quiet, 0.99),
            "burst_p50_ms": pct(during, 0.5), "burst_p99_ms": pct(during, 0.99),
            "ratio_p99": pct(during, 0.99) / pct(quiet, 0.99),
            "burst_stored_seconds": sum(stored_s) / len(stored_s),
            "burst_caught_up_seconds": sum(caught_up_s) / len(caught_up_s),
            "bursts": reps, "commands_quiet": len(quiet), "commands_during": len(during)}


# -- 3. idle consoles: memory each, and one delta to all of them -------------------------------

# The reference for one delta to every console: a bare websockets server that greets each
# connection with a snapshot-typed frame (what the console client waits for), then, on a line on
# its stdin (a JSON string: the very delta text the hub sent), sends it to every connection with
# websockets' own `broadcast()` (written to each transport at once, nothing awaited), with the
# hub's permessage-deflate settings (no server context takeover, window bits 12, memLevel 5), so
# the clients decompress and parse the same bytes; broadcast() compresses once per connection.
BROADCAST_SERVER = """
import asyncio, json, sys
from websockets.asyncio.server import broadcast, serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
SNAPSHOT = '{"type":"snapshot"}'
async def hold(ws):
    await ws.send(SNAPSHOT)
    await ws.wait_closed()
async def main():
    loop = asyncio.get_running_loop()
    deflate = ServerPerMessageDeflateFactory(
        server_no_context_takeover=True, server_max_window_bits=12, client_max_window_bits=12,
        compress_settings={"memLevel": 5})
    async with serve(hold, "127.0.0.1", int(sys.argv[1]), ping_interval=None, compression=None,
                     extensions=[deflate]) as server:
        print("ready", flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            broadcast(server.connections, json.loads(line))
asyncio.run(main())
"""


def bench_consoles(code: Path, work: Path, n: int) -> dict[str, float]:
    """n idle city consoles on one `linkage serve`: resident memory per console against idle
    connections to a bare websockets echo server, and the p99 time for one report's delta to
    reach every console (clients: bench/_distributed_consoles.py, as bench_distributed uses)
    against the same clients' p99 for one message `broadcast()` by a bare websockets server."""
    from bench.bench_distributed import ECHO_SERVER, hold_consoles, rss_kib

    city = "130700"
    with serve(code, work / f"consoles-{code.name}") as s:
        time.sleep(1)
        before = rss_kib(s.pid)
        ws_url = s.url.replace("http://", "ws://")
        client = hold_consoles(f"{ws_url}/ws/console?center={city}&token={s.token}", n, False,
                               frame=True)
        time.sleep(2)
        after = rss_kib(s.pid)
        t0 = time.time()
        httpx.post(f"{s.url}/api/incidents", json=REPORT, headers=s.headers,
                   timeout=30).raise_for_status()
        assert client.stdout is not None and client.stdin is not None
        times = orjson.loads(client.stdout.readline())
        delta = orjson.loads(client.stdout.readline())
        client.stdin.write("\n")
        client.stdin.flush()
        client.wait(120)
    port = free_port()
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
        time.sleep(1)
        echo_before = rss_kib(echo.pid)
        echo_client = hold_consoles(f"ws://127.0.0.1:{port}", n, True)
        time.sleep(2)
        echo_after = rss_kib(echo.pid)
        assert echo_client.stdin is not None
        echo_client.stdin.write("\n")
        echo_client.stdin.flush()
        echo_client.wait(120)
    finally:
        echo.terminate()
        echo.wait(10)
    broadcast_times, b0 = bare_broadcast(n, delta)
    delays = sorted((t - t0) * 1000 for t in times)
    bare_delays = sorted((t - b0) * 1000 for t in broadcast_times)
    ours, bare = (after - before) / n, (echo_after - echo_before) / n
    return {"consoles": float(n), "kib_per_console": ours, "echo_kib_per_connection": bare,
            "ratio": ours / bare, "fanout_p50_ms": pct(delays, 0.5),
            "fanout_p99_ms": pct(delays, 0.99), "broadcast_p50_ms": pct(bare_delays, 0.5),
            "broadcast_p99_ms": pct(bare_delays, 0.99),
            "fanout_ratio_p99": pct(delays, 0.99) / pct(bare_delays, 0.99)}


def bare_broadcast(n: int, delta: str) -> tuple[list[float], float]:
    """The times n console clients received one message (`delta`) broadcast by a bare
    websockets server, and the time it was asked to send it."""
    from bench.bench_distributed import hold_consoles

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", BROADCAST_SERVER, str(port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdin is not None
        assert server.stdout.readline().strip() == "ready"
        client = hold_consoles(f"ws://127.0.0.1:{port}", n, False)
        time.sleep(2)
        t0 = time.time()
        server.stdin.write(orjson.dumps(delta).decode() + "\n")
        server.stdin.flush()
        assert client.stdout is not None and client.stdin is not None
        times = orjson.loads(client.stdout.readline())
        client.stdin.write("\n")
        client.stdin.flush()
        client.wait(120)
        return times, t0
    finally:
        server.terminate()
        server.wait(10)


# -- 1 (open loop): a command's p99 at a fixed offered rate ------------------------------------

REPORT_BODY = ('{"source":"hotline","category":"noise","grid":"130706001001001",'
               '"description":"noise"}')


def open_loop(s: Served, rate: float, seconds: float, *args: str) -> dict[str, Any]:
    """bench/_open_loop.py (this checkout's) against `s`, in a process of its own; its summary."""
    port = s.url.rsplit(":", 1)[1]
    out = subprocess.run([sys.executable, "-m", "bench._open_loop", "--port", port, "--rate",
                          str(rate), "--seconds", str(seconds), *args], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                         text=True, check=True).stdout
    found: dict[str, Any] = json.loads(out.splitlines()[-1])
    return found


def bench_open(code: Path, work: Path, rates: list[float], seconds: float) -> dict[str, Any]:
    """Reports (`POST /api/incidents`) offered open-loop at each rate for `seconds`, against the
    same generator at the same rate on the same server's `GET /healthz` (a fresh server per
    rate, so that a rate's reports do not weigh on the next rate's views)."""
    post = ["--method", "POST", "--path", "/api/incidents", "--body", REPORT_BODY]
    out: dict[str, Any] = {}
    for rate in rates:
        with serve(code, work / f"open-{rate:g}-{code.name}") as s:
            auth = ["--header", f"Authorization: Bearer {s.token}"]
            open_loop(s, 100, 2, *post, *auth)  # warm-up: 200 reports
            time.sleep(1)
            health = open_loop(s, rate, seconds)
            reports = open_loop(s, rate, seconds, *post, *auth)
        out[f"{rate:g}"] = {"rate": rate, "reports": reports, "healthz": health,
                            "ratio_p99": reports["p99_ms"] / health["p99_ms"]}
    return out


# -- 3 (under load): append → console with 1,000 consoles on three levels --------------------

CITY, DISTRICT = "130700", "130706"
TAG = re.compile(rb"fo-(\d+)-(\d+)")
BUCKET = 10_000  # histogram buckets a second: 0.1 ms
TOP = 120 * BUCKET  # anything above two minutes counts as two minutes


def children(pid: int) -> list[int]:
    """The child processes of pid (Linux)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


class Histogram:
    """Latencies in 0.1 ms buckets: millions of (console, event) pairs without a list of each."""

    def __init__(self) -> None:
        self.counts = [0] * (TOP + 1)
        self.n = 0
        self.top = 0

    def add(self, seconds: float) -> None:
        b = min(TOP, max(0, int(seconds * BUCKET)))
        self.counts[b] += 1
        self.n += 1
        if b > self.top:
            self.top = b

    def pct(self, q: float) -> float:
        """ms: the upper edge of the bucket holding the nearest-rank percentile q."""
        if not self.n:
            return float("nan")
        rank, seen = max(1, int(q * self.n + 0.999999)), 0
        for b, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return (b + 1) * 1000 / BUCKET
        return (self.top + 1) * 1000 / BUCKET

    def summary(self) -> dict[str, float]:
        return {"pairs": float(self.n), "p50_ms": self.pct(0.5), "p99_ms": self.pct(0.99),
                "max_ms": (self.top + 1) * 1000 / BUCKET}


def fanout_plan(consoles: int, townships: list[str]) -> list[str]:
    """The centers of `consoles` consoles: a third on the city, a third on the district, the
    rest spread over the townships (all under that district, so every event reaches consoles
    at each level). Fewer than 3 × (townships + 2): one console per center."""
    if consoles < 3 * (len(townships) + 2):
        return [CITY, DISTRICT, *townships]
    third = consoles // 3
    rest = consoles - 2 * third
    spread = [townships[i % len(townships)] for i in range(rest)]
    return [CITY] * third + [DISTRICT] * third + sorted(spread)


def fanout_stream(s: Served, path: Path, rate: float, seconds: float, batch: int,
                  report_every: int, prefix: str = "fo") -> float:
    """Write the generator's requests (one line per send) for `rate` events a second: alert
    batches of `batch` through the ingest API, every `report_every`-th request a report instead.
    Every event carries the tag fo-<request>-<k> (alert id; report description; `prefix` instead
    of fo for a warm-up), cameras and
    grids in turn over the district's townships. Returns the rate of requests."""
    cameras = [c for c in orjson.loads((ROOT / "infra/data/cameras.json").read_bytes())["cameras"]
               if c["grid"].startswith(DISTRICT)]
    per_request = (1 + (report_every - 1) * batch) / report_every
    request_rate = rate / per_request
    count = round(request_rate * seconds)
    now = time.time()
    camera = 0
    with path.open("w") as out:
        for i in range(count):
            if i % report_every == report_every - 1:
                grid = cameras[camera % len(cameras)]["grid"]
                camera += 1
                body = orjson.dumps({"source": "hotline", "category": "noise", "grid": grid,
                                     "description": f"{prefix}-{i}-0"}).decode()
                headers = {**s.headers, "Content-Type": "application/json"}
                line = {"method": "POST", "path": "/api/incidents", "headers": headers,
                        "body": body}
            else:
                alerts = []
                for k in range(batch):
                    c = cameras[camera % len(cameras)]
                    camera += 1
                    alerts.append({"id": f"{prefix}-{i}-{k}", "camera": c["id"], "label": "person",
                                   "score": 0.7, "start_time": now + i / request_rate})
                line = {"method": "POST", "path": "/api/ingest/alerts",
                        "headers": {**s.feed, "Content-Type": "application/json"},
                        "body": orjson.dumps({"alerts": alerts}).decode()}
            out.write(json.dumps(line) + "\n")
    return request_rate


def tagged_events(db: Path) -> list[tuple[int, int, str]]:
    """(notification id, request index, grid) of every tagged Raised / Reported event."""
    import sqlite3

    found = []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        for n, topic, state in conn.execute(
                "SELECT rowid, topic, state FROM stored_events"):
            if not (topic.endswith("Raised") or topic.endswith("Reported")):
                continue
            match = TAG.search(state)
            grid = re.search(rb'"grid":"(\d+)"', state)
            if match and grid:
                found.append((int(n), int(match.group(1)), grid.group(1).decode()))
    return found


def run_fanout(code: Path, work: Path, consoles: int, rate: float, seconds: float,
               batch: int, report_every: int, procs: int, name: str) -> dict[str, Any]:
    """One run: `consoles` consoles in `procs` client processes, the event stream at `rate`
    events a second, and the (console, event) latencies from each event's scheduled send."""
    from bench.bench_distributed import cpu_seconds
    from infra.loaders.jurisdiction import load_jurisdiction
    from infra.settings import Settings

    jurisdiction = load_jurisdiction(Settings().jurisdiction)
    townships = sorted(u.id for u in jurisdiction.children(DISTRICT))
    plan = fanout_plan(consoles, townships)
    data = work / f"fanout-{name}-{code.name}"
    level = {CITY: "city", DISTRICT: "district", **dict.fromkeys(townships, "township")}
    with serve(code, data) as s:
        requests, log = work / f"fanout-{name}.jsonl", work / f"fanout-{name}-log.jsonl"
        request_rate = fanout_stream(s, requests, rate, seconds, batch, report_every)
        warm = work / f"fanout-{name}-warm.jsonl"  # the same stream for 1 s, before the consoles
        fanout_stream(s, warm, rate, 1, batch, report_every, prefix="wu")
        open_loop(s, request_rate, 1, "--requests", str(warm))
        clients = []
        ws = s.url.replace("http://", "ws://")
        for p in range(min(procs, len(plan))):
            mine: dict[str, int] = {}
            for center in plan[p::procs]:
                mine[center] = mine.get(center, 0) + 1
            spec = ",".join(f"{c}:{n}" for c, n in mine.items())
            clients.append((subprocess.Popen(
                [sys.executable, "-m", "bench._fanout_consoles", ws, s.token,
                 str(work / f"fanout-{name}-{p}.json"), spec], cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True), work / f"fanout-{name}-{p}.json"))
        for client, _ in clients:
            assert client.stdout is not None
            if client.stdout.readline().strip() != "ready":
                raise RuntimeError("a console client did not get ready")
        time.sleep(1)
        load = os.getloadavg()
        server_pids = [s.pid, *children(s.pid)]  # the server and its ingest writer
        client_pids = [client.pid for client, _ in clients]
        cpu_before = [cpu_seconds(pid) for pid in server_pids + client_pids]
        generator = open_loop(s, request_rate, seconds, "--requests", str(requests),
                              "--log", str(log), "--max-connections", "256")
        events = tagged_events(data / "events.db")
        last = max((n for n, _, _ in events), default=0)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the city's console has folded them all
            view = httpx.get(f"{s.url}/api/centers/{CITY}/view", headers=s.headers,
                             timeout=30).json()
            if view.get("position", 0) >= last:
                break
            time.sleep(0.5)
        caught_up = time.time()
        cpu = [cpu_seconds(pid) - before
               for pid, before in zip(server_pids + client_pids, cpu_before, strict=True)]
        time.sleep(1)
        outputs = []
        for client, out in clients:
            assert client.stdin is not None and client.stdout is not None
            client.stdin.write("\n")
            client.stdin.flush()
            client.stdout.readline()
            client.wait(120)
            outputs.append(orjson.loads(out.read_bytes()))
    sends = [orjson.loads(line) for line in log.read_text().splitlines()]
    # Each center's events, ascending: (n, scheduled send, answer).
    by_center: dict[str, list[tuple[int, float, float | None]]] = {}
    for n, i, grid in sorted(events):
        _, scheduled, answered, _status = sends[i]
        for center in jurisdiction.centers_for(grid):
            if center in level:
                by_center.setdefault(center, []).append((n, scheduled, answered))
    whole, from_2xx = Histogram(), Histogram()
    levels = {lv: Histogram() for lv in ("city", "district", "township")}
    missing = deltas = 0
    for output in outputs:
        for console in output["consoles"]:
            times, positions = console["t"], console["p"]
            deltas += len(times) - 1
            h = levels[level[console["center"]]]
            j = 0
            for n, scheduled, answered in by_center.get(console["center"], []):
                while j < len(positions) and positions[j] < n:
                    j += 1
                if j == len(positions):
                    missing += 1
                    continue
                whole.add(times[j] - scheduled)
                h.add(times[j] - scheduled)
                if answered is not None:
                    from_2xx.add(times[j] - answered)
    return {"consoles": len(plan), "client_processes": len(clients),
            "cpu_seconds": {"server": cpu[0], "ingest_writer": sum(cpu[1:len(server_pids)]),
                            "clients": sum(cpu[len(server_pids):]),
                            "generator": generator.get("cpu_s", 0.0),
                            "wall": caught_up - generator["start"]},
            "load_average_at_start": load, "events": len(events),
            "events_per_s": rate, "requests_per_s": request_rate, "generator": generator,
            "deltas_received": deltas, "pairs_missing": missing,
            "resync_snapshots": sum(o["snapshots"] for o in outputs),
            "deltas_without_position": sum(o["without_position"] for o in outputs),
            "all": whole.summary(), "from_2xx": from_2xx.summary(),
            "levels": {lv: h.summary() for lv, h in levels.items()},
            "per_level_consoles": {lv: sum(1 for c in plan if level[c] == lv) for lv in levels}}


def bench_fanout(code: Path, work: Path, consoles: int, rate: float, seconds: float,
                 batch: int, report_every: int, procs: int) -> dict[str, Any]:
    """The same event stream to `consoles` consoles, then (the reference) to one console per
    center of the three levels, each on a fresh server."""
    ours = run_fanout(code, work, consoles, rate, seconds, batch, report_every, procs, "load")
    ref = run_fanout(code, work, 0, rate, seconds, batch, report_every, 1, "reference")
    return {"ours": ours, "reference": ref,
            "ratio_p99": ours["all"]["p99_ms"] / ref["all"]["p99_ms"]}


# -- 5. replay against raw read + decode -------------------------------------------------------

def store_history(embedded: Any, alerts: int, incidents: int) -> None:
    """The replay target's history: `alerts` camera alerts in batches of 500, then `incidents`
    reported and accepted incidents (bench/replay_equal.py stores the same)."""
    from command_center.feed_formats import decode_alerts
    from infra.bootstrap import build_alerts

    service = embedded.service
    ingest = build_alerts(embedded.settings, embedded.jurisdiction, service)
    actor: Any = {"user": "bench", "role": "feed", "center": None}
    for b in range(0, alerts, 500):
        body = orjson.dumps({"alerts": [
            {"id": f"r-{i}", "camera": CAMERA, "label": "person", "score": 0.7,
             "start_time": 1_800_000_000.0 + i} for i in range(b, min(b + 500, alerts))]})
        ingest.ingest("bench", decode_alerts(body), actor)
    officer: Any = {"user": "bench", "role": "admin", "center": None}
    for i in range(incidents):
        incident = service.report(actor=officer, grid=GRID, source="hotline",
                                  category="noise", severity="routine",
                                  description=f"incident {i}")
        service.act(str(incident.id), "accept", actor=officer)


def bench_replay(work: Path, alerts: int, incidents: int, reps: int) -> dict[str, float]:
    from infra.bootstrap import build_embedded
    from infra.runtime.tuning import tune_process
    from infra.settings import Settings

    settings = Settings().with_(data_dir=work / "replay", ingest_process=False,
                                runner_process=False)  # the replay folds in this process
    embedded = build_embedded(settings)
    try:
        service = embedded.service
        store_history(embedded, alerts, incidents)
        total = service.recorder.max_notification_id()
        recorder = service.recorder
        tune_process()  # as `linkage replay` does (both measurements run under it)
        raw_times, replay_times, raw_cpu, replay_cpu = [], [], [], []
        for _ in range(reps):
            started, cpu = time.perf_counter(), time.thread_time()
            n, position = 0, 0
            while True:
                rows = recorder.select_notification_rows(position + 1, 500)  # type: ignore[attr-defined]
                if not rows:
                    break
                for row in rows:
                    orjson.loads(row[4])
                n += len(rows)
                position = rows[-1][0]
            raw_times.append(time.perf_counter() - started)
            raw_cpu.append(time.thread_time() - cpu)
            assert n == total
            started, cpu = time.perf_counter(), time.thread_time()
            folded = embedded.runner.rebuild()
            replay_times.append(time.perf_counter() - started)
            replay_cpu.append(time.thread_time() - cpu)
            assert folded == total
    finally:
        embedded.close()
    raw, replay = sorted(raw_times)[reps // 2], sorted(replay_times)[reps // 2]
    # CPU time of this thread (both run in it): what other processes on a loaded machine
    # take from it shows in the wall times, much less here.
    cpu_raw, cpu_replay = sorted(raw_cpu)[reps // 2], sorted(replay_cpu)[reps // 2]
    return {"events": float(total), "raw_events_per_s": total / raw,
            "replay_events_per_s": total / replay, "ratio": raw / replay,
            "cpu_raw_events_per_s": total / cpu_raw, "cpu_replay_events_per_s": total / cpu_replay,
            "cpu_ratio": cpu_raw / cpu_replay}


# -- report ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_embedded", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="http,loop,open,group,burst,consoles,fanout,replay")
    p.add_argument("--consoles", type=int, default=10_000)
    p.add_argument("--group-commands", type=int, default=3000)
    p.add_argument("--compare", type=Path, default=None,
                   help="another checkout (e.g. a worktree of main) to measure in the same run")
    p.add_argument("--seconds", type=int, default=8, help="wrk duration per measurement")
    p.add_argument("--alerts", type=int, default=10_000, help="alerts in the burst")
    p.add_argument("--bursts", type=int, default=3, help="bursts measured one after another")
    p.add_argument("--replay-alerts", type=int, default=50_000)
    p.add_argument("--replay-incidents", type=int, default=2_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--open-rates", default="250,500,1000",
                   help="offered reports/s of the open-loop sweep (the goal is at 1,000)")
    p.add_argument("--open-seconds", type=float, default=10)
    p.add_argument("--fanout-consoles", type=int, default=1000)
    p.add_argument("--fanout-rate", type=float, default=1000, help="events/s appended")
    p.add_argument("--fanout-seconds", type=float, default=10)
    p.add_argument("--fanout-batch", type=int, default=10, help="alerts per ingest request")
    p.add_argument("--fanout-report-every", type=int, default=10,
                   help="every n-th request is a report instead of an alert batch")
    p.add_argument("--fanout-procs", type=int, default=2, help="console client processes")
    p.add_argument("--out", type=Path, default=RESULTS, help="where the results go (JSON)")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    codes = [("this checkout", ROOT)] + ([("compare", args.compare)] if args.compare else [])
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "load_average": os.getloadavg()}
    work = Path(tempfile.mkdtemp(prefix="linkage-bench-embedded-"))
    try:
        table = Table(title="#17 embedded targets (each against a reference of the same run)")
        for col in ("target", "code", "ours", "reference", "ratio", "goal"):
            table.add_column(col)
        if "http" in only:
            if shutil.which("wrk") is None:
                console.print("[yellow]wrk not found (Debian package wrk): target 1 skipped")
            else:
                for label, code in codes:
                    r = results[f"http/{label}"] = bench_http(code, work, args.seconds)
                    table.add_row("1 reports/s, 32 conn.", label, f"{r['reports_per_s']:,.0f}/s",
                                  f"/healthz {r['healthz_per_s']:,.0f}/s", f"{r['ratio']:.2f}",
                                  ">= 0.5")
        def elsewhere(code: Path, target: str) -> dict[str, float]:
            """Run one in-process target in a child that imports the other checkout's code."""
            out = work / f"{target}-compare.json"
            subprocess.run([sys.executable, __file__, "--only", target, "--out", str(out),
                            "--group-commands", str(args.group_commands), "--reps",
                            str(args.reps), "--replay-alerts", str(args.replay_alerts),
                            "--replay-incidents", str(args.replay_incidents)], check=True,
                           env={**os.environ, "PYTHONPATH": str(code)}, cwd=code,
                           stdout=subprocess.DEVNULL)
            found: dict[str, float] = json.loads(out.read_text())[f"{target}/this checkout"]
            return found

        if "loop" in only and shutil.which("wrk") is not None:
            for label, code in codes:
                r = results[f"loop/{label}"] = bench_loop(code, work, args.seconds, 3000)
                table.add_row("1 whole loop over HTTP, 32 clients", label,
                              f"{r['http_commands_per_s']:,.0f} commands/s",
                              f"peer in process {r['peer_commands_per_s']:,.0f}/s",
                              f"{r['ratio']:.2f}", ">= 1")
        if "open" in only:
            rates = [float(r) for r in args.open_rates.split(",")]
            for label, code in codes:
                r = results[f"open/{label}"] = bench_open(code, work, rates, args.open_seconds)
                for at in r.values():
                    ours, ref = at["reports"], at["healthz"]
                    short = (f"; {ours['answered']:,}/{ours['sent']:,} answered"
                             if ours["answered"] < ours["sent"] else "")
                    table.add_row(f"1 report p99, {at['rate']:,.0f}/s offered (open loop)", label,
                                  f"{ours['p99_ms']:.1f} ms (p50 {ours['p50_ms']:.1f}, max "
                                  f"{ours['max_ms']:.0f}; {ours['late']} late{short})",
                                  f"/healthz {ref['p99_ms']:.1f} ms (p50 {ref['p50_ms']:.1f})",
                                  f"{at['ratio_p99']:.1f}",
                                  "p99 <= 50 ms" if at["rate"] >= 1000 else "(sweep)")
        if "group" in only:
            for label, code in codes:
                r = (bench_group(work, args.group_commands, 32) if code == ROOT
                     else elsewhere(code, "group"))
                results[f"group/{label}"] = r
                table.add_row("1b reports in process, 32 threads", label,
                              f"{r['group_per_s']:,.0f}/s (mean batch {r['mean_batch']:.1f})",
                              f"one at a time {r['serial_per_s']:,.0f}/s", f"{r['ratio']:.2f}",
                              "> 1")
        if "burst" in only:
            for label, code in codes:
                r = results[f"burst/{label}"] = bench_burst(code, work, args.alerts, 5.0,
                                                            args.bursts)
                table.add_row(f"2 command p99 in {args.bursts} bursts of {args.alerts:,} alerts "
                              f"(until folded and sealed: {r['burst_caught_up_seconds']:.1f} s "
                              "each)", label,
                              f"{r['burst_p99_ms']:.1f} ms (p50 {r['burst_p50_ms']:.1f}, "
                              f"n={r['commands_during']})",
                              f"quiet {r['quiet_p99_ms']:.1f} ms (p50 {r['quiet_p50_ms']:.1f})",
                              f"{r['ratio_p99']:.2f}", "<= 2")
        if "consoles" in only:
            for label, code in codes:
                r = results[f"consoles/{label}"] = bench_consoles(code, work, args.consoles)
                table.add_row(f"3 {args.consoles:,} idle consoles: memory each", label,
                              f"{r['kib_per_console']:.1f} KiB",
                              f"websockets echo {r['echo_kib_per_connection']:.1f} KiB",
                              f"{r['ratio']:.2f}", "<= 1.5")
                table.add_row("3 one delta to all of them", label,
                              f"p99 {r['fanout_p99_ms']:.0f} ms (p50 {r['fanout_p50_ms']:.0f})",
                              f"bare broadcast() p99 {r['broadcast_p99_ms']:.0f} ms "
                              f"(p50 {r['broadcast_p50_ms']:.0f})",
                              f"{r['fanout_ratio_p99']:.2f}", "p99 <= 250 ms")
        if "fanout" in only:
            for label, code in codes:
                r = results[f"fanout/{label}"] = bench_fanout(
                    code, work, args.fanout_consoles, args.fanout_rate, args.fanout_seconds,
                    args.fanout_batch, args.fanout_report_every, args.fanout_procs)
                ours, ref = r["ours"], r["reference"]
                table.add_row(f"3 append -> console, {ours['consoles']:,} consoles "
                              f"({ours['client_processes']} client proc.), "
                              f"{args.fanout_rate:,.0f} events/s", label,
                              f"p99 {ours['all']['p99_ms']:.1f} ms (p50 "
                              f"{ours['all']['p50_ms']:.1f}, max {ours['all']['max_ms']:.0f})",
                              f"{ref['consoles']} consoles: p99 {ref['all']['p99_ms']:.1f} ms "
                              f"(p50 {ref['all']['p50_ms']:.1f})",
                              f"{r['ratio_p99']:.1f}", "p99 <= 50 ms")
                for lv in ("city", "district", "township"):
                    a, b = ours["levels"][lv], ref["levels"][lv]
                    table.add_row(f"  ... {lv} consoles ({ours['per_level_consoles'][lv]} / "
                                  f"{ref['per_level_consoles'][lv]})", label,
                                  f"p99 {a['p99_ms']:.1f} ms (p50 {a['p50_ms']:.1f})",
                                  f"p99 {b['p99_ms']:.1f} ms (p50 {b['p50_ms']:.1f})",
                                  f"{a['p99_ms'] / b['p99_ms']:.1f}", "")
        if "replay" in only:
            for label, code in codes:
                r = (bench_replay(work, args.replay_alerts, args.replay_incidents, args.reps)
                     if code == ROOT else elsewhere(code, "replay"))
                results[f"replay/{label}"] = r
                table.add_row(f"5 replay of {r['events']:,.0f} events", label,
                              f"{r['replay_events_per_s']:,.0f} events/s",
                              f"read+decode {r['raw_events_per_s']:,.0f}/s", f"{r['ratio']:.2f}",
                              ">= 0.5")
                if "cpu_ratio" in r:  # not measured by older checkouts
                    table.add_row("5 the same in CPU time (this thread)", label,
                                  f"{r['cpu_replay_events_per_s']:,.0f} events/s",
                                  f"read+decode {r['cpu_raw_events_per_s']:,.0f}/s",
                                  f"{r['cpu_ratio']:.2f}", ">= 0.5")
        console.print(table)
        console.print(f"load average at the start: {results['load_average']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
