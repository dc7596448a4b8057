"""The foundation benchmark: commands/s of the command path, and append -> console latency.

a. Commands/s of the HTTP-free command path (IncidentService: load, check, save) plus the
   embedded runner folding the notifications into the center views (`catch_up()` every
   --catch-up-every commands and at the end, inside the measured time), against plain
   eventsourcing saving one trivial event per command, on the same SQLite file (its own table).
   Both run --reps times, interleaved; the median is reported.
b. Append -> console latency at a fixed rate: the real server, a websocket console on the city
   center, POST /api/incidents at --rate for --duration seconds; time from just before the POST
   until the delta naming the incident reaches the console. Baseline in the same run: the POST
   round trip alone at the same rate with no console connected.

    python -m bench.bench_commands [--commands N] [--reps 3] [--rate 50] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench._baseline import BASELINE_TABLE, baseline_app, baseline_command

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "var" / "bench" / "commands.json"
CITY = "130700"

ACTOR: dict[str, Any] = {"user": "bench", "role": "city_officer", "center": None}
LOOP = ("accept", "dispatch", "acknowledge", "resolve", "return-visit", "close")
DEPARTMENTS = ("urban_management", "housing", "water_affairs", "fire_rescue", "street_office")
CATEGORIES = {
    "road_damage": "路面坑洼，影响车辆通行 / pothole blocks traffic",
    "garbage": "小区门口垃圾堆放多日无人清理 / garbage piling up at the gate",
    "noise": "夜间施工噪音扰民 / construction noise at night",
    "illegal_parking": "消防通道被车辆占用 / fire lane blocked by cars",
}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

console = Console(width=max(Console().width, 120))


# -- workload ------------------------------------------------------------------


def schedule(n: int, in_flight: int = 50, seed: int = 7) -> list[tuple[int, str]]:
    """N commands as (incident slot, action): reports until `in_flight` incidents are open,
    then a random open incident takes its next loop step; a closed one makes room."""
    rng = random.Random(seed)
    open_: dict[int, int] = {}  # slot -> index of its next step in LOOP
    out: list[tuple[int, str]] = []
    next_slot = 0
    while len(out) < n:
        if len(open_) < in_flight:
            out.append((next_slot, "report"))
            open_[next_slot] = 0
            next_slot += 1
            continue
        slot = rng.choice(list(open_))
        step = open_[slot]
        out.append((slot, LOOP[step]))
        if step + 1 == len(LOOP):
            del open_[slot]
        else:
            open_[slot] = step + 1
    return out


def report_fields(rng: random.Random, grid: str) -> dict[str, Any]:
    category = rng.choice(list(CATEGORIES))
    return {
        "source": rng.choice(("hotline", "grid_worker", "wechat")),
        "category": category,
        "severity": "major" if rng.random() < 0.1 else "routine",
        "grid": grid,
        "description": CATEGORIES[category],
        "location": None,
        "reporter": {"name": "张先生", "phone": "138 0000 0000"},
    }


def action_params(action: str, rng: random.Random) -> dict[str, Any]:
    if action == "dispatch":
        due = datetime.now(UTC) + timedelta(hours=rng.choice((1, 4, 24)))
        return {"assignee": {"kind": "department", "id": rng.choice(DEPARTMENTS)},
                "due": due.isoformat()}
    if action == "resolve":
        return {"outcome": "已处置完毕 / handled"}
    if action == "return-visit":
        return {"satisfaction": rng.choice((3, 4, 5)), "comment": ""}
    return {}


def drive(service: Any, grids: list[str], incidents: int, seed: int = 7) -> int:
    """Report `incidents` incidents and take each through the whole loop; the commands run."""
    plan = schedule(incidents * (len(LOOP) + 1), seed=seed)
    rng = random.Random(seed)
    ids: dict[int, str] = {}
    for slot, action in plan:
        if action == "report":
            ids[slot] = str(service.report(actor=ACTOR,
                                           **report_fields(rng, grids[slot % len(grids)])).id)
        else:
            service.act(ids[slot], action, actor=ACTOR, **action_params(action, rng))
    return len(plan)


# -- a. commands/s ---------------------------------------------------------------


def run_ours(embedded: Any, plan: list[tuple[int, str]], grids: list[str], every: int,
             seed: int) -> dict[str, float]:
    """Run the plan through IncidentService; fold with the embedded runner inside the timing."""
    service, runner = embedded.service, embedded.runner
    rng = random.Random(seed)
    ids: dict[int, str] = {}
    folded = 0
    runner_s = 0.0
    first_id = service.recorder.max_notification_id() or 0
    start = time.perf_counter()
    for i, (slot, action) in enumerate(plan, 1):
        if action == "report":
            incident = service.report(actor=ACTOR, **report_fields(rng, grids[slot % len(grids)]))
            ids[slot] = str(incident.id)
        else:
            service.act(ids[slot], action, actor=ACTOR, **action_params(action, rng))
        if i % every == 0:
            t = time.perf_counter()
            folded += runner.catch_up()
            runner_s += time.perf_counter() - t
    t = time.perf_counter()
    folded += runner.catch_up()
    runner_s += time.perf_counter() - t
    elapsed = time.perf_counter() - start
    # A major report appends two events (Reported, then Escalated to the township at once).
    appended = (service.recorder.max_notification_id() or 0) - first_id
    if folded != appended:
        raise RuntimeError(f"runner folded {folded} notifications; {appended} were appended")
    return {"seconds": elapsed, "runner_seconds": runner_s, "commands_per_s": len(plan) / elapsed}


def run_baseline(app: Any, n: int, offset: int) -> dict[str, float]:
    start = time.perf_counter()
    for i in range(n):
        baseline_command(app, offset + i)
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "commands_per_s": n / elapsed}


def city_grids(embedded: Any) -> list[str]:
    return [g.id for g in embedded.jurisdiction.grids()
            if CITY in embedded.jurisdiction.centers_for(g.id)]


def table_rows(path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def bench_throughput(n: int, reps: int, every: int, data_dir: Path) -> dict[str, Any]:
    from infra.bootstrap import build_embedded
    from infra.settings import Settings

    settings = Settings().with_(data_dir=data_dir, runner_process=False)  # its runner is read
    embedded = build_embedded(settings)
    base_app = baseline_app(settings.sqlite_path)
    grids = city_grids(embedded)
    plan = schedule(n)
    try:
        # Warm-up (not measured): imports, statement caches, the first views.
        run_ours(embedded, schedule(200, seed=1), grids, every, seed=1)
        run_baseline(base_app, 200, offset=-1_000_000)
        ours: list[dict[str, float]] = []
        base: list[dict[str, float]] = []
        for rep in range(reps):
            order: list[Callable[[], None]] = [
                lambda rep=rep: ours.append(run_ours(embedded, plan, grids, every, seed=100 + rep)),
                lambda rep=rep: base.append(run_baseline(base_app, n, offset=rep * n)),
            ]
            if rep % 2:
                order.reverse()
            for run in order:
                run()
        events_rows = table_rows(settings.sqlite_path, "stored_events")
        baseline_rows = table_rows(settings.sqlite_path, BASELINE_TABLE)
    finally:
        embedded.close()
        base_app.close()
    ours_rate = statistics.median(r["commands_per_s"] for r in ours)
    base_rate = statistics.median(r["commands_per_s"] for r in base)
    mix: dict[str, int] = {}
    for _, action in plan:
        mix[action] = mix.get(action, 0) + 1
    return {
        "commands": n,
        "reps": reps,
        "catch_up_every": every,
        "mix": mix,
        "sqlite_file": "one file: Linkage in stored_events, baseline in " + BASELINE_TABLE,
        "rows": {"stored_events": events_rows, BASELINE_TABLE: baseline_rows},
        "ours": {"runs": ours, "median_commands_per_s": ours_rate,
                 "median_runner_share": statistics.median(r["runner_seconds"] / r["seconds"]
                                                          for r in ours)},
        "baseline": {"runs": base, "median_commands_per_s": base_rate},
        "ratio_ours_over_baseline": ours_rate / base_rate,
        "ratio_per_rep": [o["commands_per_s"] / b["commands_per_s"] for o, b in zip(ours, base, strict=True)],
    }


# -- b. append -> console latency ----------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "max_ms": max(ms),
            "mean_ms": statistics.fmean(ms)}


async def post_at_rate(client: Any, grids: list[str], rate: float, duration: float,
                       seed: int) -> list[tuple[str, float, float]]:
    """Open-loop: POST /api/incidents at fixed times; returns (incident id, t_before, t_after)."""
    rng = random.Random(seed)
    count = int(rate * duration)
    bodies = []
    for i in range(count):
        fields = report_fields(rng, grids[i % len(grids)])
        fields.pop("location")
        bodies.append(fields)

    async def one(body: dict[str, Any]) -> tuple[str, float, float]:
        t0 = time.perf_counter()
        response = await client.post("/api/incidents", json=body)
        t1 = time.perf_counter()
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/incidents -> {response.status_code}: {response.text}")
        return str(response.json()["id"]), t0, t1

    tasks = []
    start = time.perf_counter()
    for i, body in enumerate(bodies):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(body)))
    return list(await asyncio.gather(*tasks))


async def latency_async(rate: float, duration: float, data_dir: Path) -> dict[str, Any]:
    import httpx
    import websockets

    from bench._server import start_server

    server = start_server(data_dir)
    try:
        grids = city_grids(server.embedded)
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers,
                                     timeout=30) as client:
            await post_at_rate(client, grids, rate, 1.0, seed=1)  # warm-up, not measured
            # Baseline: the POST round trip alone, no console connected.
            alone = await post_at_rate(client, grids, rate, duration, seed=2)
            async with websockets.connect(server.console_url(CITY), max_size=None) as ws:
                await ws.send(json.dumps({"type": "hello"}))
                first = json.loads(await ws.recv())
                if first.get("type") != "snapshot":
                    raise RuntimeError(f"expected a snapshot first; got {first.get('type')!r}")
                arrivals: dict[str, float] = {}
                frames = 0

                async def read() -> None:
                    nonlocal frames
                    async for message in ws:
                        t = time.perf_counter()
                        frames += 1
                        text = message if isinstance(message, str) else message.decode()
                        for incident_id in UUID_RE.findall(text):
                            arrivals.setdefault(incident_id, t)

                reader = asyncio.create_task(read())
                posted = await post_at_rate(client, grids, rate, duration, seed=3)
                deadline = time.perf_counter() + 10
                while (any(i not in arrivals for i, _, _ in posted)
                       and time.perf_counter() < deadline):
                    await asyncio.sleep(0.01)
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    finally:
        server.stop()
    missing = [i for i, _, _ in posted if i not in arrivals]
    if missing:
        raise RuntimeError(f"{len(missing)} of {len(posted)} incidents never reached the console")
    return {
        "rate_per_s": rate,
        "duration_s": duration,
        "center": CITY,
        "delta_frames_received": frames,
        "post_alone": summary_ms([t1 - t0 for _, t0, t1 in alone]),
        "post_with_console": summary_ms([t1 - t0 for _, t0, t1 in posted]),
        "append_to_console": summary_ms([arrivals[i] - t0 for i, t0, _ in posted]),
        "console_after_post_response": summary_ms([arrivals[i] - t1 for i, _, t1 in posted]),
    }


# -- report ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "cpu_model": cpu, "sqlite": sqlite3.sqlite_version}


def print_results(results: dict[str, Any]) -> None:
    if "throughput" in results:
        t = results["throughput"]
        table = Table(title=f"a. commands/s — {t['commands']} commands, median of {t['reps']}, "
                            f"runner catch_up every {t['catch_up_every']}")
        table.add_column("path")
        table.add_column("commands/s (median)", justify="right")
        table.add_column("runs", justify="right")
        table.add_column("ratio", justify="right")
        ours, base = t["ours"], t["baseline"]
        table.add_row("Linkage: IncidentService load+check+save + runner fold",
                      f"{ours['median_commands_per_s']:,.0f}",
                      ", ".join(f"{r['commands_per_s']:,.0f}" for r in ours["runs"]),
                      f"{t['ratio_ours_over_baseline']:.3f}")
        table.add_row("baseline: eventsourcing app.save(trivial aggregate)",
                      f"{base['median_commands_per_s']:,.0f}",
                      ", ".join(f"{r['commands_per_s']:,.0f}" for r in base["runs"]), "1.000")
        table.caption = (f"runner share of Linkage time (median): "
                         f"{ours['median_runner_share']:.0%}; mix: {t['mix']}")
        console.print(table)
    if "latency" in results:
        lat = results["latency"]
        table = Table(title=f"b. latency — {lat['rate_per_s']:g} reports/s for "
                            f"{lat['duration_s']:g} s, console on center {lat['center']}")
        for column in ("measurement", "n", "p50 ms", "p99 ms", "max ms"):
            table.add_column(column, justify="left" if column == "measurement" else "right")
        for key, label in (("post_alone", "baseline: POST round trip, no console"),
                           ("post_with_console", "POST round trip, console connected"),
                           ("append_to_console", "append -> console delta (before POST -> frame)"),
                           ("console_after_post_response", "frame minus POST response (<0: frame first)")):
            s = lat[key]
            table.add_row(label, str(s["n"]), f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}",
                          f"{s['max_ms']:.2f}")
        console.print(table)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_commands", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--commands", type=int, default=3000, help="commands per measured run")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions (median)")
    p.add_argument("--catch-up-every", type=int, default=100, help="runner.catch_up() period")
    p.add_argument("--rate", type=float, default=50.0, help="reports/s for the latency part")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per latency phase")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--json", type=Path, default=RESULTS, help="where to write the JSON results")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    results: dict[str, Any] = {"benchmark": "commands", "at": datetime.now(UTC).isoformat(),
                               "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="linkage-bench-") as tmp:
        if not args.skip_throughput:
            with console.status("a. commands/s ..."):
                results["throughput"] = bench_throughput(args.commands, args.reps,
                                                         args.catch_up_every, Path(tmp) / "a")
        if not args.skip_latency:
            with console.status("b. append -> console latency ..."):
                results["latency"] = asyncio.run(
                    latency_async(args.rate, args.duration, Path(tmp) / "b"))
    print_results(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
