"""Issue #14 benchmarks: the SLA watcher's read per tick, and the assessment rebuild.

a. Watcher tick: the per-incident read model (SQLite, the embedded default; PostgreSQL too with
   --postgres DSN) holds --open open cases of which --due have a rung of the escalation ladder
   due now. The watcher reads the deadline index (`due(now, 500)`); the baseline, in the same run
   on the same table, reads exactly those --due rows by primary key. For scale, the scan the
   watcher no longer does (every open case, filtered in Python) is timed too. Median of --reps.
b. Assessment rebuild: --events events of scripted cases and supervision orders (the real
   aggregates, saved through the application in batches) in a SQLite event store; the rebuild
   reads and decodes every notification and folds it into the assessment and the open orders
   (command_center/ledger.py); the baseline reads and decodes the same notifications only.

    python -m bench.bench_sla [--open 100000] [--due 100] [--events 1000000] [--reps 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "var" / "bench" / "sla.json"
console = Console(width=max(Console().width, 120))
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
ACTOR: dict[str, Any] = {"user": "bench", "role": "admin", "center": None}


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def timed(work: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """The median seconds of `reps` runs of `work`, and its last result."""
    times, result = [], None
    for _ in range(reps):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


# -- a. the watcher's read per tick ---------------------------------------------------------

def cases(open_cases: int, due: int) -> list[dict[str, Any]]:
    from projections.cases import urgency

    out = []
    for n in range(open_cases):
        late = n % (open_cases // due) == 0
        escalate_at = NOW - timedelta(minutes=5) if late else NOW + timedelta(hours=1 + n % 48)
        case = {"id": f"{n:08d}-0000-4000-8000-000000000000", "grid": f"g{n % 500}",
                "status": "reported", "severity": "routine", "category": "noise",
                "source": "hotline", "assignee": None, "due": None,
                "reported_at": (NOW - timedelta(hours=1)).isoformat(),
                "updated_at": NOW.isoformat(), "summary": "bench", "version": 1,
                "escalations": 0, "escalated_to": None, "supervised_by": None,
                "step": "accept", "step_due": escalate_at.isoformat(),
                "escalate_at": escalate_at.isoformat(),
                "centers": [f"t{n % 40}", f"d{n % 8}", "city"]}
        case["urgency"] = urgency(case)
        out.append(case)
    return out


def bench_watcher(open_cases: int, due: int, reps: int, tmp: Path,
                  postgres: str | None) -> list[dict[str, Any]]:
    from infra.store import incident_rows
    from infra.store.view_store import SQLiteViewStore
    from projections.cases import utc_text

    now = utc_text(NOW.isoformat()) or ""
    records = cases(open_cases, due)
    due_ids = [c["id"] for c in records if c["escalate_at"] < NOW.isoformat()]
    assert len(due_ids) == due, (len(due_ids), due)
    results = []

    store = SQLiteViewStore(tmp / "views.db")
    for start in range(0, len(records), 10_000):
        store.commit(0, [], rows=records[start:start + 10_000])
    columns = ", ".join(incident_rows.COLUMNS)
    marks = ", ".join("?" * len(due_ids))

    def by_id() -> list[Any]:
        with store._lock:
            rows = store._execute(f"SELECT {columns} FROM linkage_incidents WHERE id IN ({marks})",
                                  tuple(due_ids))
        return [incident_rows.to_case(r) for r in rows]

    def scan() -> list[Any]:
        with store._lock:
            rows = store._execute(incident_rows.open_sql())
        return [c for c in map(incident_rows.to_case, rows)
                if (utc_text(c.get("escalate_at")) or "~") <= now]

    results.append(measure("SQLite", reps, lambda: store.due(now, 500), by_id, scan, due))

    if postgres:
        import psycopg

        from infra.store.incident_rows import PostgresIncidentRows

        schema = f"bench_sla_{os.getpid()}"
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            rows = PostgresIncidentRows(postgres, schema)
            for start in range(0, len(records), 10_000):
                rows.upsert_now(records[start:start + 10_000])
            rows._run(lambda conn: conn.execute("ANALYZE linkage_incidents"))
            pg_marks = ", ".join(["%s"] * len(due_ids))

            def pg_by_id() -> list[Any]:
                return rows._rows(f"SELECT {columns} FROM linkage_incidents WHERE id IN "
                                  f"({pg_marks})", tuple(due_ids))

            def pg_scan() -> list[Any]:
                return [c for c in rows._rows(incident_rows.open_sql(), ())
                        if (utc_text(c.get("escalate_at")) or "~") <= now]

            results.append(measure("PostgreSQL", reps, lambda: rows.due(now, 500), pg_by_id,
                                   pg_scan, due))
            rows.close()
        finally:
            with psycopg.connect(postgres, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return results


def measure(store: str, reps: int, tick: Callable[[], list[Any]], by_id: Callable[[], list[Any]],
            scan: Callable[[], list[Any]], due: int) -> dict[str, Any]:
    tick(), by_id()  # warm the caches alike
    tick_s, ticked = timed(tick, reps)
    base_s, based = timed(by_id, reps)
    assert sorted(c["id"] for c in ticked) == sorted(c["id"] for c in based), "not the same rows"
    assert len(ticked) == due
    scan_s, scanned = timed(scan, max(1, reps // 2))
    assert len(scanned) == due
    return {"store": store, "tick_ms": tick_s * 1e3, "baseline_ms": base_s * 1e3,
            "ratio": tick_s / base_s, "scan_ms": scan_s * 1e3}


# -- b. the assessment rebuild -------------------------------------------------------------

def scripted(event: Any, k: int) -> datetime:
    """A stored event's time: its aggregate's scripted start (the clock the commands were given
    is in its step_due/deadline fields), then one hour per event of the aggregate."""
    base = getattr(event, "step_due", None) or getattr(event, "deadline", None)
    start = datetime.fromisoformat(base) if isinstance(base, str) else NOW
    return start - timedelta(minutes=30) + timedelta(hours=k)


def script_history(service: Any, events: int) -> int:
    """Cases through the loop (some late, some reopened, some left open) and supervision
    orders, saved in batches until at least `events` events are stored; how many were."""
    from domain.incident import Incident
    from domain.sla_policy import StepClock
    from domain.supervision_order import SupervisionOrder

    policy = service.policy
    stored = 0
    n = 0
    t0 = NOW - timedelta(days=120)
    while stored < events:
        batch: list[Any] = []
        for _ in range(200):
            t = t0 + timedelta(minutes=7 * n)
            centers = [f"t{n % 40}", f"d{n % 8}", "city"]
            if n % 25 == 0:
                order = SupervisionOrder.issue(
                    actor=ACTOR, centers=centers, issuer=centers[1], addressee=centers[0],
                    deadline=(t + timedelta(days=1)).isoformat(), note="bench", now=t)
                order.fulfil(actor=ACTOR, what="done", now=t + timedelta(hours=20 + n % 8))
                batch.append(order)
            incident = Incident.report(source="hotline", category="noise", severity="routine",
                                       grid="g", centers=centers, description="bench case",
                                       actor=ACTOR, clock=StepClock(policy, t))
            incident.accept(actor=ACTOR, clock=StepClock(policy, t + timedelta(minutes=n % 50)))
            incident.dispatch(actor=ACTOR, assignee={"kind": "department", "id": f"dep{n % 6}"},
                              clock=StepClock(policy, t + timedelta(minutes=70)))
            incident.acknowledge(actor=ACTOR, clock=StepClock(policy, t + timedelta(hours=2)))
            if n % 10 != 9:
                incident.resolve(actor=ACTOR, outcome="fixed",
                                 clock=StepClock(policy, t + timedelta(days=1 + n % 4)))
                incident.return_visit(actor=ACTOR, satisfaction=2 + n % 4,
                                      clock=StepClock(policy, t + timedelta(days=2 + n % 4)))
                if n % 4 != 0:
                    incident.close(actor=ACTOR)
            batch.append(incident)
            n += 1
        for aggregate in batch:
            # Stored times as a history spread over months would have them (the store's own
            # timestamps would put every event on the day the benchmark runs).
            for k, event in enumerate(aggregate.pending_events):
                object.__setattr__(event, "timestamp", scripted(event, k))
        stored += sum(len(a.pending_events) for a in batch)
        service.save(*batch)
    return stored


def bench_rebuild(events: int, reps: int, tmp: Path) -> dict[str, Any]:
    from command_center.ledger import Ledger
    from domain.application import IncidentService
    from infra.bootstrap import ledger_reader
    from infra.loaders.sla_policy import load_policy

    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp / "events.db"),
           "APPLICATION_RECORDER_TOPIC": "infra.store.sqlite_recorder:LinkageSQLiteRecorder"}
    service = IncidentService(lambda grid: ["t", "d", "city"], env=env, policy=load_policy())
    start = time.perf_counter()
    stored = script_history(service, events)
    generate_s = time.perf_counter() - start
    read = ledger_reader(service)
    # What generating left alive weighs on the garbage collector in both phases alike; park it.
    gc.collect()
    gc.freeze()

    def raw() -> int:
        position, count = 0, 0
        while True:
            batch = read(position, 2000)
            if not batch:
                return count
            count += len(batch)
            position = batch[-1].notification_id

    def rebuild() -> Ledger:
        ledger = Ledger(read)
        ledger.catch_up()
        return ledger

    raw(), rebuild()  # warm the page cache alike
    raw_s, count = timed(raw, reps)
    rebuild_s, ledger = timed(rebuild, reps)
    assert count == stored and ledger.position == count
    units = len(ledger.assessment.days)
    cells = sum(len(days) for days in ledger.assessment.days.values())
    return {"events": count, "generate_s": generate_s, "raw_s": raw_s, "rebuild_s": rebuild_s,
            "raw_events_per_s": count / raw_s, "rebuild_events_per_s": count / rebuild_s,
            "ratio": raw_s / rebuild_s, "units": units, "unit_days": cells,
            "open_cases_kept": len(ledger.assessment.cases)}


def print_results(results: dict[str, Any]) -> None:
    if "watcher" in results:
        table = Table(title=f"a. watcher read per tick: {results['open']:,} open, "
                            f"{results['due']} due (median of {results['reps']})")
        for col in ("store", "tick (deadline index)", f"baseline: {results['due']} rows by id",
                    "ratio", "full scan (not done)"):
            table.add_column(col)
        for r in results["watcher"]:
            table.add_row(r["store"], f"{r['tick_ms']:.2f} ms", f"{r['baseline_ms']:.2f} ms",
                          f"{r['ratio']:.2f}x", f"{r['scan_ms']:.0f} ms")
        console.print(table)
    if "rebuild" in results:
        r = results["rebuild"]
        table = Table(title=f"b. assessment rebuild over {r['events']:,} events "
                            f"(median of {results['reps']})")
        for col in ("raw read+decode", "rebuild (read+decode+fold)", "ratio raw/rebuild",
                    "units", "unit-days", "open cases kept"):
            table.add_column(col)
        table.add_row(f"{r['raw_s']:.2f} s ({r['raw_events_per_s']:,.0f}/s)",
                      f"{r['rebuild_s']:.2f} s ({r['rebuild_events_per_s']:,.0f}/s)",
                      f"{r['ratio']:.2f}", str(r["units"]), str(r["unit_days"]),
                      str(r["open_cases_kept"]))
        console.print(table)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_sla", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--open", type=int, default=100_000)
    p.add_argument("--due", type=int, default=100)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--postgres", default=os.environ.get("LINKAGE_BENCH_POSTGRES"),
                   help="also time the watcher on PostgreSQL (a DSN)")
    p.add_argument("--skip-watcher", action="store_true")
    p.add_argument("--skip-rebuild", action="store_true")
    p.add_argument("--json", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    results: dict[str, Any] = {"benchmark": "sla", "at": datetime.now(UTC).isoformat(),
                               "machine": machine(), "open": args.open, "due": args.due,
                               "reps": args.reps}
    with tempfile.TemporaryDirectory(prefix="linkage-bench-sla-") as tmp:
        if not args.skip_watcher:
            with console.status("a. watcher read per tick ..."):
                (Path(tmp) / "a").mkdir()
                results["watcher"] = bench_watcher(args.open, args.due, args.reps,
                                                   Path(tmp) / "a", args.postgres)
        if not args.skip_rebuild:
            with console.status(f"b. assessment rebuild over {args.events:,} events ..."):
                (Path(tmp) / "b").mkdir()
                results["rebuild"] = bench_rebuild(args.events, args.reps, Path(tmp) / "b")
    print_results(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
