"""Issue #16: what operations cost.

a. Outbound delivery rate: the deliverer (infra/outbound/deliverer.py) sending --deliveries
   stored deliveries to a local receiver (its own process), one subscription (in order, one at a time, tracked in
   its SQLite store), against a plain loop posting the same payloads with the same httpx client
   to the same receiver, in the same run. Target >= 0.5x.
b. The command path with HTTP metrics on against off: reports and accepts over HTTP
   (--commands per server per rep) to two `linkage serve` child processes side by side, one
   with LINKAGE_HTTP_METRICS=false, a report+accept pair to each in turn; commands/s from the
   median pair time; fresh servers per rep; medians over reps. Target >= 0.95x.
c. The command path while an outbound receiver is down (a subscription to a closed port, its
   deliveries failing and retried) against a server with no subscription; same method as b.
A control first: two identical servers measured the same way (its ratio is the noise floor).

    python -m bench.bench_operations [--deliveries 2000] [--commands 300] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench._server import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "var" / "bench" / "operations.json"
GRID = "130706001001001"


class Sink:
    """A local receiver that answers 200 to everything, in a process of its own (uvicorn)."""

    def __init__(self) -> None:
        import subprocess
        import sys

        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench._sink:app", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log"], cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(self.url, content=b"", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the sink did not start") from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def delivery_rate(n: int, sink: Sink, work: Path, first_plain: bool) -> tuple[float, float]:
    """(deliverer deliveries/s, plain loop posts/s) for n payloads."""
    from infra.outbound.deliverer import Deliverer, Tuning, json_body, signature
    from infra.outbound.kinds import Notice
    from infra.outbound.store import OutboundStore
    from infra.outbound.subscriptions import Subscription
    from infra.store.sqldb import Database

    secret = "bench-secret-0123456789"
    subscription = Subscription(name="bench", url=sink.url, events=["major_reported"],
                                secret=secret)
    notices = [Notice(i, frozenset({"major_reported"}), "Incident.Reported", f"inc-{i}",
                      "2026-11-30T00:00:00+00:00", ("130706001", "130706", "130700"),
                      {"severity": "major", "description": "x" * 200}) for i in range(1, n + 1)]
    bodies = [json_body(notice, "bench") for notice in notices]
    store = OutboundStore(Database("sqlite", sqlite_path=work / f"outbound-{time.time_ns()}.db"))
    store.record_scan("outbound", n, [("bench", i + 1, f"inc-{i + 1}", "application/json", b)
                                      for i, b in enumerate(bodies)])
    delivered = [0]

    def count(subscription: str, outcome: str) -> None:
        delivered[0] += outcome == "delivered"

    deliverer = Deliverer(store, lambda after, limit, types: [], lambda: [subscription],
                          sender="bench", head=lambda: n, tuning=Tuning(poll=0.01),
                          on_result=count)

    async def run_deliverer() -> float:
        async with httpx.AsyncClient() as client:
            task = asyncio.create_task(deliverer.send_loop(client, subscription))
            started = time.perf_counter()
            while delivered[0] < n or store.next_pending("bench"):  # posted and recorded
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            task.cancel()
            return n / elapsed

    async def run_plain() -> float:
        async with httpx.AsyncClient() as client:
            started = time.perf_counter()
            for i, body in enumerate(bodies):
                response = await client.post(sink.url, content=body, headers={
                    "Content-Type": "application/json", "Idempotency-Key": f"bench:{i + 1}",
                    "X-Linkage-Signature": signature(secret, body)}, timeout=5)
                response.raise_for_status()
            return n / (time.perf_counter() - started)

    if first_plain:
        plain = asyncio.run(run_plain())
        return asyncio.run(run_deliverer()), plain
    return asyncio.run(run_deliverer()), asyncio.run(run_plain())


class Serve:
    """`linkage serve` in a child process (its own interpreter: nothing shared with the client
    or another server), with settings in its environment."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        import subprocess
        import sys

        from infra.loaders.jurisdiction import load_jurisdiction
        from infra.security.tokens import Tokens
        from infra.settings import Settings

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "linkage"), "serve", "--port", str(self.port),
             "--data-dir", str(data_dir)],
            env={**os.environ, "LINKAGE_ACCESS_LOG": "false", **env},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("linkage serve did not start")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        settings = Settings().with_(data_dir=data_dir)
        root = load_jurisdiction(settings.jurisdiction).root.id
        self.headers = {"Authorization": "Bearer " + Tokens(settings).issue(
            "bench-officer", "city_officer", root)}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def pair_time(client: httpx.Client) -> float:
    """Seconds one report and its accept take over HTTP."""
    started = time.perf_counter()
    made = client.post("/api/incidents", json={
        "source": "hotline", "category": "noise", "grid": GRID, "severity": "major",
        "description": "bench"})
    made.raise_for_status()
    client.post(f"/api/incidents/{made.json()['id']}/accept", json={}).raise_for_status()
    return time.perf_counter() - started


def compare(work: Path, name: str, with_env: dict[str, str], without_env: dict[str, str],
            n: int, reps: int) -> tuple[float, float, list[tuple[float, float]]]:
    """Commands/s of two servers running side by side, one pair of commands to each in turn
    (the order alternating): a change of the shared machine's load hits both alike. Per rep,
    commands/s is 2 / the median pair time; fresh servers per rep; the medians over reps."""
    pairs: list[tuple[float, float]] = []
    for rep in range(reps):
        if rep % 2:  # the start order alternates too
            without = Serve(work / f"{name}-without-{rep}", **without_env)
            with_ = Serve(work / f"{name}-with-{rep}", **with_env)
        else:
            with_ = Serve(work / f"{name}-with-{rep}", **with_env)
            without = Serve(work / f"{name}-without-{rep}", **without_env)
        try:
            with (httpx.Client(base_url=with_.url, headers=with_.headers, timeout=30) as a,
                  httpx.Client(base_url=without.url, headers=without.headers, timeout=30) as b):
                for _ in range(10):  # warm up
                    pair_time(a)
                    pair_time(b)
                times_a: list[float] = []
                times_b: list[float] = []
                for i in range(n // 2):
                    if i % 2:
                        times_b.append(pair_time(b))
                        times_a.append(pair_time(a))
                    else:
                        times_a.append(pair_time(a))
                        times_b.append(pair_time(b))
        finally:
            with_.stop()
            without.stop()
        pairs.append((2 / statistics.median(times_a), 2 / statistics.median(times_b)))
    return (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs),
            pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--commands", type=int, default=300)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs",
                               "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sink = Sink()
        try:
            rates = [delivery_rate(args.deliveries, sink, work, rep % 2 == 1)
                     for rep in range(args.reps)]
        finally:
            sink.stop()
        deliverer = statistics.median(r[0] for r in rates)
        plain = statistics.median(r[1] for r in rates)
        results["a_outbound"] = {"deliverer_per_s": deliverer, "plain_loop_per_s": plain,
                                 "ratio": deliverer / plain, "target": 0.5, "reps": rates}
        print(f"a. outbound: deliverer {deliverer:,.0f}/s, plain loop {plain:,.0f}/s, "
              f"ratio {deliverer / plain:.2f} (target >= 0.5); reps {rates}")

        same_a, same_b, pairs = compare(work, "control", {}, {}, args.commands, args.reps)
        results["control"] = {"a_per_s": same_a, "b_per_s": same_b, "ratio": same_a / same_b,
                              "reps": pairs}
        print(f"control: two identical servers, the same method: {same_a:,.1f} and "
              f"{same_b:,.1f} commands/s, ratio {same_a / same_b:.3f}; reps {pairs}")
        on, off, pairs = compare(work, "metrics", {}, {"LINKAGE_HTTP_METRICS": "false"},
                                 args.commands, args.reps)
        results["b_metrics"] = {"on_per_s": on, "off_per_s": off, "ratio": on / off,
                                "target": 0.95, "reps": pairs}
        print(f"b. commands/s with HTTP metrics {on:,.1f}, without {off:,.1f}, "
              f"ratio {on / off:.3f} (target >= 0.95); reps {pairs}")

        subs = work / "subs.json"
        subs.write_bytes(orjson.dumps({"subscriptions": [{
            "name": "down", "url": f"http://127.0.0.1:{free_port()}/hook",
            "events": ["major_reported", "escalated_district", "escalated_city"],
            "secret": "bench-secret-0123456789"}]}))
        down, quiet, pairs = compare(
            work, "outbound", {"LINKAGE_OUTBOUND_FILE": str(subs), "LINKAGE_OUTBOUND_BACKOFF":
                               "0.05", "LINKAGE_OUTBOUND_MAX_BACKOFF": "0.2"}, {},
            args.commands, args.reps)
        results["c_receiver_down"] = {"down_per_s": down, "no_subscription_per_s": quiet,
                                      "ratio": down / quiet, "reps": pairs}
        print(f"c. commands/s with an outbound receiver down {down:,.1f}, with no "
              f"subscription {quiet:,.1f}, ratio {down / quiet:.3f}; reps {pairs}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
