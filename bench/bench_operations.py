"""Issue #16: what operations cost.

a. Outbound delivery rate: the deliverer (infra/outbound/deliverer.py) sending --deliveries
   stored deliveries to a local receiver, one subscription (in order, one at a time, tracked in
   its SQLite store), against a plain loop posting the same payloads with the same httpx client
   to the same receiver, in the same run. Target >= 0.5x.
b. The command path with HTTP metrics on against off: reports and accepts over HTTP
   (--commands per rep) on two servers started side by side, one with LINKAGE_HTTP_METRICS=false,
   reps interleaved; median commands/s. Target >= 0.95x.
c. The command path while an outbound receiver is down (a subscription to a closed port, its
   deliveries failing and retried) against a server with no subscription; same method as b.

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
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench._server import RunningServer, free_port, start_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "var" / "bench" / "operations.json"
GRID = "130706001001001"


class Sink:
    """A local receiver that answers 200 to everything (uvicorn, in a thread)."""

    def __init__(self) -> None:
        import uvicorn

        self.port = free_port()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            more = True
            while more:
                message = await receive()
                more = message.get("more_body", False)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True).start()
        while not self.server.started:
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.server.should_exit = True


def delivery_rate(n: int, sink: Sink, work: Path) -> tuple[float, float]:
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

    deliverer = Deliverer(store, lambda after, limit: [], lambda: [subscription],
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

    return asyncio.run(run_deliverer()), asyncio.run(run_plain())


def commands_per_second(server: RunningServer, n: int) -> float:
    """n commands over HTTP: reports, each followed by its accept (n/2 of each)."""
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
        started = time.perf_counter()
        for _ in range(n // 2):
            made = client.post("/api/incidents", json={
                "source": "hotline", "category": "noise", "grid": GRID, "severity": "major",
                "description": "bench"})
            made.raise_for_status()
            client.post(f"/api/incidents/{made.json()['id']}/accept", json={}).raise_for_status()
        return (n // 2 * 2) / (time.perf_counter() - started)


def compare(with_: RunningServer, without: RunningServer, n: int, reps: int
            ) -> tuple[float, float]:
    commands_per_second(with_, 20)  # warm both up
    commands_per_second(without, 20)
    a: list[float] = []
    b: list[float] = []
    for rep in range(reps):
        order = [(with_, a), (without, b)] if rep % 2 == 0 else [(without, b), (with_, a)]
        for server, into in order:
            into.append(commands_per_second(server, n))
    return statistics.median(a), statistics.median(b)


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
            rates = [delivery_rate(args.deliveries, sink, work) for _ in range(args.reps)]
        finally:
            sink.stop()
        deliverer = statistics.median(r[0] for r in rates)
        plain = statistics.median(r[1] for r in rates)
        results["a_outbound"] = {"deliverer_per_s": deliverer, "plain_loop_per_s": plain,
                                 "ratio": deliverer / plain, "target": 0.5}
        print(f"a. outbound: deliverer {deliverer:,.0f}/s, plain loop {plain:,.0f}/s, "
              f"ratio {deliverer / plain:.2f} (target >= 0.5)")

        on = start_server(work / "on")
        off = start_server(work / "off", http_metrics=False)
        try:
            with_metrics, without_metrics = compare(on, off, args.commands, args.reps)
        finally:
            on.stop()
            off.stop()
        results["b_metrics"] = {"on_per_s": with_metrics, "off_per_s": without_metrics,
                                "ratio": with_metrics / without_metrics, "target": 0.95}
        print(f"b. commands/s with HTTP metrics {with_metrics:,.1f}, without "
              f"{without_metrics:,.1f}, ratio {with_metrics / without_metrics:.3f} "
              "(target >= 0.95)")

        subs = work / "subs.json"
        subs.write_bytes(orjson.dumps({"subscriptions": [{
            "name": "down", "url": f"http://127.0.0.1:{free_port()}/hook",
            "events": ["major_reported", "escalated_district", "escalated_city"],
            "secret": "bench-secret-0123456789"}]}))
        down = start_server(work / "down", outbound_file=str(subs), outbound_backoff=0.05,
                            outbound_max_backoff=0.2)
        quiet = start_server(work / "quiet")
        try:
            receiver_down, no_subscription = compare(down, quiet, args.commands, args.reps)
        finally:
            down.stop()
            quiet.stop()
        results["c_receiver_down"] = {"down_per_s": receiver_down,
                                      "no_subscription_per_s": no_subscription,
                                      "ratio": receiver_down / no_subscription}
        print(f"c. commands/s with an outbound receiver down {receiver_down:,.1f}, with no "
              f"subscription {no_subscription:,.1f}, ratio {receiver_down / no_subscription:.3f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
