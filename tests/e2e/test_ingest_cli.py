"""CLI checks for the rules file and the camera registry; a bad rules file stops `serve`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from infra.cli.commands import main
from infra.loaders.alert_rules import DEFAULT_RULES
from infra.loaders.cameras import DEFAULT_CAMERAS


def test_shipped_rules_and_cameras_check_ok() -> None:
    rules = CliRunner().invoke(main, ["alerts", "check-rules", str(DEFAULT_RULES)])
    assert rules.exit_code == 0 and "fire_or_smoke_in_zone" in rules.output
    cameras = CliRunner().invoke(main, ["alerts", "check-cameras", str(DEFAULT_CAMERAS)])
    assert cameras.exit_code == 0 and "400 cameras" in cameras.output


def test_a_bad_rule_is_named_with_its_problem(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rules]]\nname = "hot"\nlabels = ["fire"]\nmin_score = 2\naction = "open_incident"\n')
    result = CliRunner().invoke(main, ["alerts", "check-rules", str(bad)])
    assert result.exit_code == 1
    assert "rule 'hot': min_score must be between 0.0 and 1.0; got 2" in result.output


def test_a_rules_file_that_is_not_toml_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text("[[rules]\nname=")
    result = CliRunner().invoke(main, ["alerts", "check-rules", str(bad)])
    assert result.exit_code == 1 and "not valid TOML" in result.output


def test_a_camera_in_an_unknown_grid_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "cameras.json"
    bad.write_text('{"cameras": [{"id": "cam-x", "grid": "nowhere"}]}')
    result = CliRunner().invoke(main, ["alerts", "check-cameras", str(bad)])
    assert result.exit_code == 1 and "camera 'cam-x': grid 'nowhere'" in result.output


def test_serve_refuses_to_start_with_a_bad_rules_file(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rules]]\nname = "x"\naction = "raise_priority"\n')
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path / "data"), "--port", "1"],
                                env={"LINKAGE_ALERT_RULES": str(bad)})
    assert result.exit_code != 0
    assert "rule 'x': has no condition" in result.output
