"""The audit benchmark (issue #18): sealing with the Merkle tree, proofs, time travel.

a. Sealing rate: the sealer with the Merkle tree (chain rows + leaves + nodes + signed tree
   heads) against the chain alone (the sealer before #18: `Sealer(merkle=False)`), on copies of
   the same SQLite store of --seal-events events, --reps times interleaved; the median.
b. Proof generation: inclusion proofs per second read from the stored tree, against the way an
   outsider had to check one event before (recompute the chain from notification 1 up to it).
c. `view?at=` latency for random times on a history of --history events (a realistic loop of
   incident events, replicated), from the nearest view snapshot, against a full refold.

Histories are copies of a real template: --template incidents driven through the whole loop by
IncidentService, then replicated with fresh ids and later times by raw inserts.

    python -m bench.bench_audit [--seal-events 50000] [--reps 3] [--history 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.bench_commands import drive
from command_center.audit_api import view_at
from infra.bootstrap import build_service
from infra.loaders.jurisdiction import load_jurisdiction
from infra.runner.view_snapshots import ViewSnapshots
from infra.security.merkle_store import TreeReader
from infra.security.seal_format import GENESIS, chain_hash
from infra.security.sealer import Sealer, load_signing_key, stored_reader
from infra.settings import Settings
from infra.store.sqldb import Database

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "var" / "bench" / "audit.json"
START = datetime(2026, 1, 1, tzinfo=UTC)
STAMP = re.compile(rb'"_data_":"[^"]+"')
console = Console(width=max(Console().width, 120))


def make_store(data_dir: Path, events: int, template: int) -> Settings:
    """A SQLite store of `events` events: a driven template, replicated by raw inserts."""
    settings = Settings().with_(data_dir=data_dir, seal_checkpoint_every=100)
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    service = build_service(settings, jurisdiction)
    grids = [g.id for g in jurisdiction.grids()]
    drive(service, grids, template)
    service.close()
    conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    rows = conn.execute("SELECT originator_id, originator_version, topic, state FROM "
                        "stored_events ORDER BY rowid").fetchall()
    # Only incidents the template closed: copies then keep about as many cases open as the
    # template had in flight, as a store in a steady state does.
    closed = {oid for oid, _v, topic, _s in rows if topic.endswith(".Closed")}
    rows = [row for row in rows if row[0] in closed]
    conn.execute("DELETE FROM stored_events")
    n = 0
    batch: list[tuple[Any, ...]] = []
    conn.execute("BEGIN")
    while n < events:
        ids: dict[str, str] = {}
        for oid, version, topic, state in rows:
            if n == events:
                break
            new = ids.setdefault(oid, uuid.uuid4().hex)
            stamp = f'"_data_":"{(START + timedelta(milliseconds=n)).isoformat()}"'.encode()
            batch.append((new, version, topic, STAMP.sub(stamp, state, count=1)))
            n += 1
        if len(batch) >= 10_000 or n == events:
            conn.executemany("INSERT INTO stored_events (originator_id, originator_version, "
                             "topic, state) VALUES (?, ?, ?, ?)", batch)
            batch = []
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file alone holds it all: copyable
    conn.close()
    return settings


def reader(path: Path) -> Any:
    conn = sqlite3.connect(path, check_same_thread=False)

    def read(start: int, limit: int) -> list[Any]:
        from infra.security.seal_format import Stored
        from infra.store.sqlite_recorder import _hyphenated

        return [Stored(n, _hyphenated(o), v, t, s) for n, o, v, t, s in conn.execute(
            "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
            "WHERE rowid >= ? ORDER BY rowid LIMIT ?", (start, limit))]

    return read


def seal_once(source: Path, work: Path, settings: Settings, merkle: bool) -> float:
    """Events/s of one full seal of a fresh copy of the store."""
    copy = work / f"seal-{uuid.uuid4().hex}.sqlite"
    shutil.copy(source, copy)
    sealer = Sealer(reader(copy), Database("sqlite", sqlite_path=copy),
                    load_signing_key(settings), checkpoint_every=100, merkle=merkle)
    begin = time.perf_counter()
    done = sealer.catch_up()
    sealer.checkpoint_now()
    elapsed = time.perf_counter() - begin
    sealer.db.close()
    for path in work.glob(copy.name + "*"):
        path.unlink()
    return done / elapsed


def bench_sealing(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    settings = make_store(work / "seal", args.seal_events, args.template)
    chain, tree = [], []
    for _ in range(args.reps):
        chain.append(seal_once(settings.sqlite_path, work, settings, merkle=False))
        tree.append(seal_once(settings.sqlite_path, work, settings, merkle=True))
    return {"events": args.seal_events, "chain_per_s": statistics.median(chain),
            "merkle_per_s": statistics.median(tree),
            "ratio": statistics.median(tree) / statistics.median(chain),
            "chain_runs": chain, "merkle_runs": tree}


def bench_proofs(args: argparse.Namespace, settings: Settings, size: int) -> dict[str, Any]:
    conn = sqlite3.connect(settings.sqlite_path)
    tree = TreeReader(lambda sql, params=(): conn.execute(sql, tuple(params)).fetchall())
    head = tree.head()
    assert head is not None
    rng = random.Random(3)
    wanted = [rng.randint(1, head.notification_id) for _ in range(args.proofs)]
    begin = time.perf_counter()
    for n in wanted:
        tree.inclusion(n, head.tree_size)
    proofs_per_s = len(wanted) / (time.perf_counter() - begin)
    # Before: recompute the chain from notification 1 up to the event (its signed checkpoint).
    read = reader(settings.sqlite_path)
    begin = time.perf_counter()
    checks = 0
    for n in wanted[:args.baseline_checks]:
        previous, start = GENESIS, 1
        while start <= n:
            batch = read(start, 5000)
            for event in batch:
                if event.id > n:
                    break
                previous = chain_hash(previous, event)
            start = batch[-1].id + 1
        checks += 1
    before_per_s = checks / (time.perf_counter() - begin)
    conn.close()
    return {"tree_size": head.tree_size, "proofs_per_s": proofs_per_s,
            "chain_recompute_per_s": before_per_s, "ratio": proofs_per_s / before_per_s,
            "history": size}


def bench_time_travel(args: argparse.Namespace, work: Path) -> tuple[dict[str, Any], Settings]:
    begin = time.perf_counter()
    settings = make_store(work / "history", args.history, args.template)
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    made = time.perf_counter() - begin
    service = build_service(settings, jurisdiction)
    path = settings.sqlite_path
    sealer = Sealer(reader(path), Database("sqlite", sqlite_path=path),
                    load_signing_key(settings), checkpoint_every=100)
    begin = time.perf_counter()
    sealer.catch_up()
    sealer.checkpoint_now()
    sealed = time.perf_counter() - begin
    snapshots = ViewSnapshots(Database("sqlite", sqlite_path=settings.snapshots_path),
                              stored_reader(service.recorder, memory=False),
                              [u.id for u in jurisdiction.centers()], every=args.snapshot_every,
                              keep=args.snapshot_keep,
                              heads=Database("sqlite", sqlite_path=path))
    begin = time.perf_counter()
    snapshots.catch_up()
    snapshotted = time.perf_counter() - begin
    center = jurisdiction.root.id
    rng = random.Random(5)
    span = timedelta(milliseconds=args.history)
    times = [START + span * rng.random() for _ in range(args.queries)]
    latencies, cpu = [], []
    for at in times:
        t0, c0 = time.perf_counter(), time.process_time()
        snapshots.view_at(center, at)
        latencies.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)  # the work alone, without waiting for a core
    load = os.getloadavg()  # over the queries (1, 5, 15 min)
    full = []
    for at in times[:args.full_refolds]:
        t0 = time.perf_counter()
        expected = view_at(service, center, at)
        full.append(time.perf_counter() - t0)
        assert snapshots.view_at(center, at) == expected  # the benchmark checks what it times
    with sqlite3.connect(settings.snapshots_path) as conn:
        stored = conn.execute("SELECT COUNT(*), SUM(LENGTH(state)) FROM "
                              "linkage_view_snapshots").fetchone()
        # Since #17's seventh pass a snapshot's open cases are stored once per version in a
        # table of their own (a checkout from before has none): count them too.
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = "
                        "'linkage_view_snapshot_cases'").fetchone():
            cases = conn.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(state)), 0) FROM "
                                 "linkage_view_snapshot_cases").fetchone()
            stored = (stored[0], stored[1] + cases[1], cases[0])
    service.close()
    latencies.sort()
    cpu.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return {"history": args.history, "center": center, "queries": len(latencies),
            "p50_ms": statistics.median(latencies) * 1000, "p99_ms": p99 * 1000,
            "cpu_p50_ms": statistics.median(cpu) * 1000,
            "cpu_p99_ms": cpu[min(len(cpu) - 1, int(len(cpu) * 0.99))] * 1000,
            "full_refold_ms": statistics.median(full) * 1000,
            "ratio_p50": statistics.median(full) / statistics.median(latencies),
            "snapshots": stored[0], "snapshot_bytes": stored[1],
            "snapshot_case_versions": stored[2] if len(stored) > 2 else None,
            "build_s": made, "seal_s": sealed, "snapshot_s": snapshotted,
            "load_average": load}, settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seal-events", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--template", type=int, default=300, help="incidents driven for real")
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--baseline-checks", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--full-refolds", type=int, default=3)
    parser.add_argument("--snapshot-every", type=int, default=Settings().view_snapshot_every)
    parser.add_argument("--snapshot-keep", type=int, default=Settings().view_snapshot_keep)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        work = Path(tmp)
        sealing = bench_sealing(args, work)
        travel, settings = bench_time_travel(args, work)
        proofs = bench_proofs(args, settings, args.history)
    table = Table(title="audit (issue #18)")
    for column in ("measure", "ours", "baseline (same run)", "ratio"):
        table.add_column(column)
    table.add_row(f"sealing, {sealing['events']:,} events", f"{sealing['merkle_per_s']:,.0f}/s "
                  "(chain + Merkle)", f"{sealing['chain_per_s']:,.0f}/s (chain alone)",
                  f"{sealing['ratio']:.2f}x")
    table.add_row(f"inclusion proof, tree of {proofs['tree_size']:,}",
                  f"{proofs['proofs_per_s']:,.0f}/s", f"{proofs['chain_recompute_per_s']:,.2f}/s "
                  "(chain recomputed from 1)", f"{proofs['ratio']:,.0f}x")
    table.add_row(f"view?at=, {travel['history']:,} events, center {travel['center']}",
                  f"p50 {travel['p50_ms']:.1f} ms, p99 {travel['p99_ms']:.1f} ms",
                  f"{travel['full_refold_ms']:,.0f} ms (full refold, median)",
                  f"{travel['ratio_p50']:,.0f}x (p50)")
    console.print(table)
    console.print(f"view?at= CPU time per query (the work without waiting for a core): p50 "
                  f"{travel['cpu_p50_ms']:.1f} ms, p99 {travel['cpu_p99_ms']:.1f} ms; load "
                  f"average {travel['load_average'][0]:.1f} after the queries")
    versions = travel["snapshot_case_versions"]
    with_versions = "" if versions is None else f", with {versions:,} case versions"
    console.print(f"view snapshots stored: {travel['snapshots']} ({travel['snapshot_bytes']:,} "
                  f"bytes{with_versions}); history built in {travel['build_s']:.0f} s, sealed in "
                  f"{travel['seal_s']:.0f} s, snapshots taken in {travel['snapshot_s']:.0f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "when": datetime.now(UTC).isoformat(), "machine": platform.platform(),
        "cpus": os.cpu_count(), "sealing": sealing, "proofs": proofs, "time_travel": travel},
        indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
