"""The sample Grafana dashboard (docs/grafana-dashboard.json) only charts metrics the code exports."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["command_center/metrics.py", "infra/runtime/operations.py",
           "infra/distributed/relay.py", "infra/distributed/worker_metrics.py",
           "infra/outbound/wiring.py"]


def test_every_metric_the_dashboard_charts_is_exported() -> None:
    dashboard = orjson.loads((ROOT / "docs/grafana-dashboard.json").read_bytes())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    charted = {re.sub(r"_(total|bucket|count|sum)$", "", name)
               for expr in exprs for name in re.findall(r"\blinkage_[a-z_]+", expr)}
    code = "".join((ROOT / path).read_text() for path in SOURCES)
    missing = sorted(name for name in charted if f'"{name}"' not in code)
    assert not missing, missing
    assert len(dashboard["panels"]) >= 10
