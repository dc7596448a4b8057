"""The grid registry: importing residents, and folding them into population counts.

a) `linkage registry import residents` of N rows (the CSV read, every row checked, batches of
   1,000 saved) against a plain batched insert of the same Resident events (built beforehand,
   untimed; saved 1,000 per transaction), each into a fresh SQLite event store, same run.
b) The population projection: read, decode and fold every stored Resident event into the
   center views (what the embedded runner does) against reading and decoding them alone.

    python -m bench.bench_registry [--rows 100000]
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from domain.registry import Resident, id_check_digit
from domain.registry_import import Importer
from domain.registry_service import RegistryService
from infra.bootstrap import build_service
from infra.loaders.jurisdiction import load_jurisdiction
from infra.settings import Settings
from projections.center_view import apply, new_center, routes_to
from projections.envelope import from_stored

ACTOR = {"user": "bench", "role": "admin", "center": None}
HEADER = ["id_number", "name", "phone", "household", "kind", "grid", "arrived"]


def rows(n: int, grids: list[str], seed: int = 15) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        base = f"130706{1950 + i % 60}{1 + i % 12:02d}{1 + i % 28:02d}{i // 420:03d}"
        # birth date (i % 420: lcm of 60, 12, 28) and serial (i // 420) make each unique
        out.append({"id_number": base + id_check_digit(base), "name": f"居民{i}",
                    "phone": f"139{i:08d}", "household": f"{i % 500}号楼",
                    "kind": rng.choice(("permanent", "floating", "rental")),
                    "grid": grids[i % len(grids)], "arrived": "2026-11-01"})
    return out


def fresh(tmp: Path, name: str) -> tuple[Any, Any]:
    settings = Settings().with_(data_dir=tmp / name)
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    return jurisdiction, build_service(settings, jurisdiction)


def bench_import(n: int, tmp: Path) -> dict[str, Any]:
    jurisdiction, service = fresh(tmp, "import")
    grids = [g.id for g in jurisdiction.grids()]
    data = rows(n, grids)
    path = tmp / "residents.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, HEADER)
        writer.writeheader()
        writer.writerows(data)
    importer = Importer(RegistryService(service, jurisdiction), ACTOR)  # type: ignore[arg-type]
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        report = importer.run("residents", ((reader.line_num, r) for r in reader))
    ours = time.perf_counter() - started
    assert report.saved == n and not report.errors, (report.saved, report.errors[:3])

    jurisdiction2, baseline = fresh(tmp, "baseline")
    registry = RegistryService(baseline, jurisdiction2)
    events = []
    for row in data:
        units, centers = registry.grid_units(row["grid"])
        events.append(Resident(units=units, centers=centers, actor=ACTOR, **row))
    started = time.perf_counter()
    for i in range(0, n, 1000):
        baseline.save(*events[i:i + 1000])
    plain = time.perf_counter() - started
    baseline.close()
    return {"rows": n, "import_s": ours, "import_rows_s": n / ours, "plain_s": plain,
            "plain_rows_s": n / plain, "ratio": plain / ours, "service": service,
            "jurisdiction": jurisdiction}


def bench_fold(service: Any, jurisdiction: Any) -> dict[str, Any]:
    recorder = service.recorder
    newest = recorder.max_notification_id() or 0

    def read(fold: bool) -> tuple[int, float]:
        centers = {u.id: new_center(u.id) for u in jurisdiction.centers()}
        count, position = 0, 0
        started = time.perf_counter()
        while position < newest:
            batch = recorder.select_notifications(start=position + 1, limit=2000)
            for n in batch:
                envelope = from_stored(n.id, n.originator_id, n.originator_version, n.topic,
                                       n.state)
                if fold:
                    for center in routes_to(envelope):
                        apply(centers[center], envelope)
                count += 1
            position = batch[-1].id
        return count, time.perf_counter() - started

    read(False)  # warm the page cache for both
    events, raw = read(False)
    _, folded = read(True)
    return {"events": events, "read_decode_s": raw, "read_decode_events_s": events / raw,
            "fold_s": folded, "fold_events_s": events / folded, "ratio": raw / folded}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_registry", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3,
                        help="repetitions, ours and the baseline alternating (the machine is shared: "
                             "the median ratio is reported with every repetition's)")
    args = parser.parse_args(argv)
    ratios: list[float] = []
    folds: list[float] = []
    for rep in range(args.reps):
        with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
            result = bench_import(args.rows, Path(tmp))
            service = result.pop("service")
            fold = bench_fold(service, result.pop("jurisdiction"))
            service.close()
        ratios.append(result["ratio"])
        folds.append(fold["ratio"])
        print(f"rep {rep + 1}: a) import of {result['rows']:,} residents: "
              f"{result['import_rows_s']:,.0f} rows/s ({result['import_s']:.1f} s); plain "
              f"batched insert of the same events: {result['plain_rows_s']:,.0f} rows/s "
              f"({result['plain_s']:.1f} s); ratio {result['ratio']:.2f}")
        print(f"       b) population fold of {fold['events']:,} events: "
              f"{fold['fold_events_s']:,.0f} events/s (read+decode+fold); raw read+decode: "
              f"{fold['read_decode_events_s']:,.0f} events/s; ratio {fold['ratio']:.2f}")
    print(f"median ratios: a) import {statistics.median(ratios):.2f} (target >= 0.5), "
          f"b) fold {statistics.median(folds):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
