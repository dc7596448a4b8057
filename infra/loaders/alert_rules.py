"""Loading the alert rules file (TOML, or JSON by extension)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import orjson

from domain.alert_rules import RuleError, RuleSet, parse_rules

DEFAULT_RULES = Path(__file__).parent.parent / "data" / "alert_rules.toml"


def load_rules(path: str | Path) -> RuleSet:
    """Parse and validate; RuleError names the file, the rule and the problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RuleError(f"{path}: cannot read: {exc}") from None
    try:
        data = orjson.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from None
    try:
        return parse_rules(data)
    except RuleError as exc:
        raise RuleError(f"{path}: {exc}") from None
