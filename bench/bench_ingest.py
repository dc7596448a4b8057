"""Alert ingest throughput and console latency under a storm, each against a baseline in the same run.

1. Baseline: per-alert ``Application.save`` (one aggregate, one transaction per alert) into the
   SQLite event store of a fresh data directory.
2. Group commit in process: the same alerts through ``AlertService.ingest`` (JSON decode,
   bulk idempotency check, one transaction per 1,000), no HTTP, no view folding.
3. Batched over HTTP: the same kind of alerts through ``POST /api/ingest/alerts`` (1,000 per request,
   group commit) to ``linkage serve`` (a separate process) on a fresh SQLite store, which
   folds them into the center views and seals them into the audit chain meanwhile. Reported twice:
   until every request was answered (stored), and until the city view counted every alert.
   ``linkage serve`` stores alerts in its ingest writer process (the default); the stage is
   repeated at the end with ``LINKAGE_INGEST_PROCESS=false`` (everything in one process).
4. Console latency: time from reporting an incident to its delta on a city console websocket,
   first on a quiet system, then during a 10,000-alert storm. Reported as p50/p99 and the ratio.

Run: ``.venv/bin/python -m bench.bench_ingest [--alerts 30000] [--baseline 2000]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import connect

CAMERAS = [f"cam-130706001001{g:03d}-1" for g in range(1, 6)]
GRID = "130706001001001"
CITY = "130700"
START = 1_800_000_000.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alert(tag: str, i: int) -> dict[str, object]:
    return {"id": f"{tag}-{i}", "camera": CAMERAS[i % len(CAMERAS)], "label": "person",
            "score": 0.7, "zones": ["gate"], "start_time": START + i * 0.001}


def baseline(data_dir: Path, n: int, tag: str = "base") -> float:
    """Alerts/s with one Application.save per alert (no idempotency check: a generous baseline)."""
    from domain.camera_alert import CameraAlert, Observation
    from infra.bootstrap import build_service
    from infra.loaders.jurisdiction import load_jurisdiction
    from infra.settings import Settings

    settings = Settings().with_(data_dir=data_dir)
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    service = build_service(settings, jurisdiction)
    centers = list(jurisdiction.centers_for(GRID))
    actor = {"user": "bench", "role": "feed", "center": None}
    observations = [Observation(feed_event_id=f"{tag}-{i}", camera=CAMERAS[0], label="person",
                                score=0.7, start_time=START + i) for i in range(n)]
    for obs in observations[:200]:  # warm up (not timed)
        service.save(CameraAlert.raise_(obs, feed="warm", grid=GRID, centers=centers,
                                        actor=actor))  # type: ignore[arg-type]
    started = time.perf_counter()
    for obs in observations:
        service.save(CameraAlert.raise_(obs, feed="bench", grid=GRID, centers=centers,
                                        actor=actor))  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    service.close()
    return n / elapsed


def group_commit(data_dir: Path, n: int, batch: int) -> float:
    """Alerts/s through AlertService.ingest (decode + idempotency check + one transaction per
    batch), in this process: the storage path without HTTP and without folding into views."""
    from command_center.feed_formats import decode_alerts
    from infra.bootstrap import build_alerts, build_service
    from infra.loaders.jurisdiction import load_jurisdiction
    from infra.settings import Settings

    settings = Settings().with_(data_dir=data_dir)
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    service = build_service(settings, jurisdiction)
    alerts = build_alerts(settings, jurisdiction, service)
    actor = {"user": "bench-direct", "role": "feed", "center": None}
    bodies = [orjson.dumps({"alerts": [alert("g", i) for i in range(s, min(s + batch, n))]})
              for s in range(0, n, batch)]
    alerts.ingest("bench-warm", decode_alerts(bodies[0]), actor)  # type: ignore[arg-type]
    started = time.perf_counter()
    for body in bodies:
        alerts.ingest("bench-direct", decode_alerts(body), actor)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    service.close()
    return n / elapsed


def credentials(data_dir: Path) -> tuple[dict[str, str], dict[str, str], str]:
    """(feed headers, officer headers, officer token) for a server on data_dir."""
    from infra.loaders.jurisdiction import load_jurisdiction
    from infra.security.api_keys import ApiKeys
    from infra.security.tokens import Tokens
    from infra.settings import Settings

    settings = Settings().with_(data_dir=data_dir)
    root = load_jurisdiction(settings.jurisdiction).root.id
    token = Tokens(settings).issue("bench-officer", "city_officer", root)
    _key_id, key = ApiKeys.for_settings(settings).issue("bench-feed")
    return {"X-API-Key": key}, {"Authorization": f"Bearer {token}"}, token


async def batched(url: str, n: int, batch: int, clients: int, feed: dict[str, str],
                  officer: dict[str, str]) -> tuple[float, float]:
    """(alerts/s acknowledged to the feeds, alerts/s until the city console's view counted them
    all): the first is the ingest rate, the second includes folding into every center's view."""
    bodies = [orjson.dumps({"alerts": [alert("b", i) for i in range(s, min(s + batch, n))]})
              for s in range(0, n, batch)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            response = await client.post("/api/ingest/alerts", content=body,
                                         headers={"content-type": "application/json", **feed})
            assert response.status_code == 200, response.text

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await client.post("/api/ingest/alerts", json={"alerts": [alert("warm", 0)]}, headers=feed)
        view_url = f"/api/centers/{CITY}/view"
        raised_before = (await client.get(view_url, headers=officer)).json()["alert_counts"]["raised"]
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        acknowledged = time.perf_counter() - started
        while True:
            view = (await client.get(view_url, headers=officer)).json()
            if view["alert_counts"]["raised"] >= raised_before + n:
                break
            await asyncio.sleep(0.005)
        folded = time.perf_counter() - started
        return n / acknowledged, n / folded


async def console_latency(url: str, ws_url: str, probes: int, storm: int,
                          feed: dict[str, str], officer: dict[str, str], token: str) -> list[float]:
    """Seconds from POST /api/incidents to the incident's delta on the city console."""
    latencies: list[float] = []
    seen: dict[str, float] = {}
    async with connect(f"{ws_url}/ws/console?center={CITY}&token={token}", max_size=None) as ws, \
            httpx.AsyncClient(base_url=url, timeout=120, headers=officer) as client:
        await ws.send('{"type":"hello"}')
        await ws.recv()

        async def read() -> None:
            async for text in ws:
                frame = orjson.loads(text)
                now = time.perf_counter()
                for change in frame.get("changes", ()):
                    path = change.get("path", [])
                    if len(path) == 2 and path[0] == "queue" and change.get("op") == "set":
                        seen.setdefault(path[1], now)
                if frame.get("type") == "snapshot":
                    for incident_id in frame["view"]["queue"]:
                        seen.setdefault(incident_id, now)

        async def flood() -> None:
            for s in range(0, storm, 1000):
                body = {"alerts": [alert(f"storm{time.time_ns()}", i) for i in range(s, min(s + 1000, storm))]}
                response = await client.post("/api/ingest/alerts", json=body, headers=feed)
                assert response.status_code == 200, response.text

        reader = asyncio.create_task(read())
        flooder = asyncio.create_task(flood()) if storm else None
        for _ in range(probes):
            sent = time.perf_counter()
            response = await client.post("/api/incidents", json={
                "source": "hotline", "category": "noise", "grid": GRID, "description": "bench"})
            incident_id = response.json()["id"]
            while incident_id not in seen:
                await asyncio.sleep(0.001)
            latencies.append(seen[incident_id] - sent)
            await asyncio.sleep(0.02)
        if flooder:
            await flooder
        reader.cancel()
    return latencies


@contextlib.contextmanager
def served(extra_env: dict[str, str] | None = None) -> Iterator[
        tuple[str, str, dict[str, str], dict[str, str], str]]:
    """`linkage serve` in a child process on a fresh SQLite store: (url, ws url, feed headers,
    officer headers, officer token). A store of its own: on the in-process stages' store its
    sealer would first seal their ~34,000 events, and that catching up would count as ingest."""
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="linkage-bench-http-"))
    feed, officer, token = credentials(data_dir)
    env = {**os.environ, "LINKAGE_INGEST_RATE": "1e9", "LINKAGE_INGEST_BURST": "1e9",
           "LINKAGE_WS_ALLOW_MISSING_ORIGIN": "1", **(extra_env or {})}
    server = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.1)
        yield url, f"ws://127.0.0.1:{port}", feed, officer, token
    finally:
        server.terminate()
        server.wait(10)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ingest")
    parser.add_argument("--alerts", type=int, default=30_000)
    parser.add_argument("--baseline", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--probes", type=int, default=60)
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="linkage-bench-"))
    # The baseline is measured before and after the group-commit run (the machine is shared:
    # bracketing it gives the ratio some protection against load that comes and goes).
    before = baseline(data_dir, args.baseline, "before")
    direct = group_commit(data_dir, args.alerts, args.batch)
    after = baseline(data_dir, args.baseline, "after")
    base = (before + after) / 2
    print(f"baseline  per-alert Application.save: {base:10.0f} alerts/s ({args.baseline} alerts, "
          f"mean of {before:.0f} before and {after:.0f} after)")
    print(f"group commit, in process (no HTTP):   {direct:10.0f} alerts/s ({args.alerts} alerts, "
          f"{args.batch}/batch)  = {direct / base:.1f}x baseline")
    with served() as (url, ws_url, feed, officer, token):
        rate, folded = asyncio.run(batched(url, args.alerts, args.batch, args.clients, feed,
                                           officer))
        print(f"batched   POST /api/ingest/alerts:    {rate:10.0f} alerts/s ({args.alerts} alerts, "
              f"{args.batch}/request, {args.clients} clients)  = {rate / base:.1f}x baseline")
        print(f"  ... and folded into the consoles' views: {folded:10.0f} alerts/s "
              f"(until the city view counted every alert)  = {folded / base:.1f}x baseline")
        time.sleep(1)
        quiet = asyncio.run(console_latency(url, ws_url, args.probes, 0, feed, officer, token))
        stormy = asyncio.run(console_latency(url, ws_url, args.probes, 10_000, feed, officer, token))
        for name, values in (("quiet", quiet), ("10k storm", stormy)):
            print(f"console latency ({name:9}): p50 {pct(values, .5) * 1000:7.1f} ms  "
                  f"p99 {pct(values, .99) * 1000:7.1f} ms  (n={len(values)})")
        print(f"storm/quiet p99 ratio: {pct(stormy, .99) / pct(quiet, .99):.1f}x")
    # The same server with the ingest writer process off: what moving the ingest out of the
    # HTTP process gives (README "Ingest writer process").
    with served({"LINKAGE_INGEST_PROCESS": "false"}) as (url, _ws, feed, officer, _token):
        rate, folded = asyncio.run(batched(url, args.alerts, args.batch, args.clients, feed,
                                           officer))
        print(f"  ... the same with LINKAGE_INGEST_PROCESS=false (one process): {rate:10.0f} "
              f"alerts/s  = {rate / base:.1f}x baseline (folded: {folded:.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
