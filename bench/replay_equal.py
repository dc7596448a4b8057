"""Does this checkout's `linkage replay` give the same views as another checkout's, to the byte?

    python -m bench.replay_equal --compare <checkout of main> [--data-dir D] [--seeds 0,7]

Builds the replay benchmark's history once (bench_embedded's target 5: 50,000 camera alerts
from one camera, 2,000 incidents reported and accepted) unless --data-dir names a data dir
that holds one already (any history will do: the data dir is copied, never changed). Then, for
each hash seed, rebuilds a copy of it with each checkout's code in a child process and compares
what each left: the view store's stored views, deltas, incident rows and position (the epoch,
random by design, left out), and the runner's views, seqs and open cases in memory, all as
orjson bytes, key order included. Prints one line per seed and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in the child, with the checkout's code first on the path: rebuild, then dump.
DUMP = r"""
import os, sqlite3, sys
from pathlib import Path
os.environ["LINKAGE_RUNNER_PROCESS"] = "false"  # rebuilt by this process's runner (any checkout)
import orjson
from infra.bootstrap import build_embedded
from infra.settings import Settings

data, out = Path(sys.argv[1]), Path(sys.argv[2])
settings = Settings().with_(data_dir=data, ingest_process=False)
embedded = build_embedded(settings)
runner = embedded.runner
try:
    runner.rebuild()
    state = {
        "views": {c: orjson.dumps(v).decode() for c, v in sorted(runner.views.items())},
        "seqs": dict(sorted(runner.seqs.items())),
        "position": runner.position,
        "cases": {c: [orjson.dumps(x).decode() for x in f.cases]
                  for c, f in sorted(runner.folds.items())},
    }
finally:
    embedded.close()
con = sqlite3.connect(str(settings.views_path))
state["stored_views"] = [(c, s, bytes(v).decode()) for c, s, v in con.execute(
    "SELECT center, seq, view FROM linkage_views ORDER BY center")]
state["stored_deltas"] = [(c, s, bytes(v).decode()) for c, s, v in con.execute(
    "SELECT center, seq, changes FROM linkage_deltas ORDER BY center, seq")]
state["incident_rows"] = [list(r) for r in con.execute(
    "SELECT * FROM linkage_incidents ORDER BY id")]
state["meta"] = [list(r) for r in con.execute(
    "SELECT k, v FROM linkage_view_meta WHERE k != 'epoch' ORDER BY k")]
con.close()
out.write_bytes(orjson.dumps(state))
print(len(state["views"]), "views,", len(state["incident_rows"]), "incident rows, position",
      state["position"])
"""


def build_history(data_dir: Path, alerts: int, incidents: int) -> None:
    """The history bench_embedded's replay target folds, stored in data_dir."""
    from bench.bench_embedded import store_history
    from infra.bootstrap import build_embedded
    from infra.settings import Settings

    settings = Settings().with_(data_dir=data_dir, ingest_process=False)
    embedded = build_embedded(settings)
    try:
        store_history(embedded, alerts, incidents)
    finally:
        embedded.close()


def dump(code: Path, label: str, history: Path, work: Path, seed: str) -> bytes:
    """Rebuild a copy of the history with the code of `code`; what it left, as bytes."""
    data = work / f"data-{label}-{seed}"
    shutil.copytree(history, data)
    out = work / f"dump-{label}-{seed}.json"
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, "-c", DUMP, str(data), str(out)], cwd=code, env=env,
                          check=True, capture_output=True, text=True)
    print(f"  {code}: {done.stdout.strip()}")
    shutil.rmtree(data)
    return out.read_bytes()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.replay_equal", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--compare", type=Path, required=True, help="the other checkout (e.g. main)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="a data dir holding a history (copied, not changed); default: build one")
    p.add_argument("--seeds", default="0,7", help="PYTHONHASHSEED values to compare under")
    p.add_argument("--alerts", type=int, default=50_000)
    p.add_argument("--incidents", type=int, default=2_000)
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="linkage-replay-equal-"))
    try:
        history = args.data_dir
        if history is None:
            history = work / "history"
            build_history(history, args.alerts, args.incidents)
        differ = False
        for seed in args.seeds.split(","):
            ours = dump(ROOT, "ours", history, work, seed)
            theirs = dump(args.compare.resolve(), "theirs", history, work, seed)
            same = ours == theirs
            differ = differ or not same
            print(f"PYTHONHASHSEED={seed}: {'byte-identical' if same else 'DIFFERENT'} "
                  f"({len(ours):,} and {len(theirs):,} bytes)")
        return 1 if differ else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
