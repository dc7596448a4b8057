"""The `linkage` command: jurisdiction check and replay."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from infra.bootstrap import build_embedded
from infra.cli.commands import main
from infra.loaders.jurisdiction import DEFAULT_JURISDICTION
from infra.settings import Settings


def test_jurisdiction_check_accepts_the_sample() -> None:
    result = CliRunner().invoke(main, ["jurisdiction", "check", str(DEFAULT_JURISDICTION)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok:")
    assert '"district":16' in result.output


def test_jurisdiction_check_names_the_broken_feature(tmp_path: Path) -> None:
    data = json.loads(DEFAULT_JURISDICTION.read_text(encoding="utf-8"))
    grid = next(f for f in data["features"] if f["properties"]["level"] == "grid")
    grid["properties"]["parent"] = "no-such-unit"
    broken = tmp_path / "broken.geojson"
    broken.write_text(json.dumps(data), encoding="utf-8")
    result = CliRunner().invoke(main, ["jurisdiction", "check", str(broken)])
    assert result.exit_code == 1
    assert grid["properties"]["id"] in result.output
    assert "no-such-unit" in result.output


def test_replay_rebuilds_the_same_views_under_a_new_epoch(tmp_path: Path) -> None:
    settings = Settings().with_(data_dir=tmp_path, runner_process=False)  # its runner is read
    embedded = build_embedded(settings)
    actor = {"user": "u", "role": "admin", "center": None}
    for grid in ("130706001001001", "130706200001001", "130706001001002"):
        incident = embedded.service.report(actor=actor, grid=grid, source="hotline",
                                           category="noise", severity="routine",
                                           description="d", location=None, reporter=None)
    embedded.service.act(str(incident.id), "accept", actor=actor)
    embedded.runner.catch_up()
    before = {c: json.dumps(embedded.runner.view(c), sort_keys=True)
              for c in ("130700", "130706", "130706001", "130706200")}
    old_epoch = embedded.runner.epoch
    # 4 incident events after the registry's seed (the directory's parties and grid workers)
    stored = embedded.service.recorder.max_notification_id()
    seeded = len(embedded.services.registry.current().parties) + sum(
        1 + len(w["grids"]) for w in embedded.services.registry.current().workers.values())
    assert stored == seeded + 4
    embedded.close()

    result = CliRunner().invoke(main, ["replay", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"replayed {stored} events" in result.output
    assert "130700" in result.output and "reported=2" in result.output

    again = build_embedded(settings)
    assert again.runner.epoch != old_epoch
    after = {c: json.dumps(again.runner.view(c), sort_keys=True) for c in before}
    assert after == before
    again.close()
