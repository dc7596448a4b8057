"""The SLA policy file: rows by category x severity, working hours, errors naming the line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from domain.sla_policy import PolicyError, parse_duration
from infra.cli.commands import main
from infra.loaders.sla_policy import DEFAULT_POLICY, load_policy, parse_text

DEFAULT = """[default]
accept = "30m"
dispatch = "1h"
acknowledge = "2h"
resolve = "3d"
visit = "2d"
"""
CALENDAR = """
[calendar]
utc_offset = "+08:00"
days = ["mon", "tue", "wed", "thu", "fri"]
start = "08:30"
end = "17:30"
"""


def test_the_shipped_policy_is_valid() -> None:
    policy = load_policy(DEFAULT_POLICY)
    assert policy.limits("fire_hazard", "major").steps["accept"] == timedelta(minutes=10)
    assert policy.limits("pothole", "routine") is policy.default


def test_the_most_specific_row_wins_and_missing_steps_come_from_the_default() -> None:
    policy = parse_text(DEFAULT + """
[[rule]]
category = "noise"
resolve = "5d"

[[rule]]
category = "noise"
severity = "major"
accept = "5m"

[[rule]]
severity = "major"
accept = "10m"
""")
    assert policy.limits("noise", "major").steps["accept"] == timedelta(minutes=5)
    assert policy.limits("noise", "major").steps["resolve"] == timedelta(days=3)
    assert policy.limits("noise", "routine").steps["resolve"] == timedelta(days=5)
    assert policy.limits("fire", "major").steps["accept"] == timedelta(minutes=10)
    assert policy.limits("fire", "routine").steps["accept"] == timedelta(minutes=30)


def test_working_hours_move_a_friday_night_routine_case_to_monday_morning() -> None:
    policy = parse_text(DEFAULT + """
[[rule]]
category = "noise"
severity = "routine"
accept = "2h"
working_hours = true
""" + CALENDAR)
    friday_23h_beijing = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # Fri 23:00 at +08:00
    due = policy.due("noise", "routine", "accept", friday_23h_beijing)
    # Counting from Monday 08:30 (+08:00) = 00:30 UTC: two working hours later.
    assert due == datetime(2026, 11, 30, 2, 30, tzinfo=UTC)
    # A category without working hours counts the clock straight through.
    assert policy.due("pothole", "routine", "accept", friday_23h_beijing) == (
        friday_23h_beijing + timedelta(minutes=30))


def test_working_time_spills_over_the_end_of_the_day() -> None:
    policy = parse_text(DEFAULT.replace('resolve = "3d"', 'resolve = "12h"')
                        .replace("[default]", "[default]\nworking_hours = true") + CALENDAR)
    thursday_16h = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # Thu 16:00 at +08:00
    # 1.5 h on Thursday, 9 h on Friday, none at the weekend: 1.5 h on Monday, 10:00 +08:00.
    assert policy.due("x", "routine", "resolve", thursday_16h) == datetime(
        2026, 11, 30, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "line", "words"), [
    (DEFAULT.replace('"2h"', '"2x"'), 4, "[default], key 'acknowledge'"),
    (DEFAULT.replace('visit = "2d"\n', ""), 1, "'visit' is missing"),
    (DEFAULT + '\n[[rule]]\ncategory = "noise"\nresolve = "0h"\n', 10, "rule #1, key 'resolve'"),
    (DEFAULT + '\n[[rule]]\ncategory = "a"\n\n[[rule]]\ncategory = "b"\nspeed = "1h"\n', 13,
     "unknown key 'speed'"),
    (DEFAULT + '\n[[rule]]\ncategory = "a"\n\n[[rule]]\ncategory = "a"\n', 12, "a second rule"),
    (DEFAULT + '\n[[rule]]\ncategory = "a"\nworking_hours = true\n', 1, "no [calendar]"),
    (DEFAULT + CALENDAR.replace('"17:30"', '"07:00"'), 12, "end after it starts"),
    (DEFAULT + '\n[visit]\nunreachable_attempts = 0\n', 9, "1 to 20"),
    (DEFAULT + '\n[escalation]\nevery = "soon"\n', 9, "[escalation], key 'every'"),
])
def test_a_bad_policy_names_the_line_and_the_rule(text: str, line: int | None, words: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_text(text, "sla.toml")
    message = str(refused.value)
    assert words in message
    if "no [calendar]" not in message:
        assert f"sla.toml line {line}:" in message


def test_broken_toml_is_refused_with_its_position() -> None:
    with pytest.raises(PolicyError, match=r"not valid TOML.*line 2"):
        parse_text('[default]\naccept = \n', "sla.toml")


@pytest.mark.parametrize("text", ["", "1", "2 h", "h", "-1h", "367d", "1w"])
def test_durations_are_checked(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_duration(text, ("default", "accept"))


def test_linkage_sla_check(tmp_path: Path) -> None:
    good = CliRunner().invoke(main, ["sla", "check", str(DEFAULT_POLICY)])
    assert good.exit_code == 0 and good.output.startswith("ok: default row and 2 rules")
    bad = tmp_path / "sla.toml"
    bad.write_text(DEFAULT.replace('"1h"', '"an hour"'))
    refused = CliRunner().invoke(main, ["sla", "check", str(bad)])
    assert refused.exit_code == 1
    assert f"{bad} line 3: [default], key 'dispatch'" in refused.output


def test_the_server_refuses_to_start_with_a_bad_policy_naming_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = tmp_path / "sla.toml"
    bad.write_text(DEFAULT.replace('"3d"', '"three days"'))
    monkeypatch.setenv("LINKAGE_SLA_POLICY", str(bad))
    refused = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path / "data"),
                                       "--port", "1"])
    assert refused.exit_code == 1, refused.output
    assert f"{bad} line 5: [default], key 'resolve'" in refused.output
