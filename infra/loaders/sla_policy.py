"""Loading the SLA policy file (TOML): a `PolicyError` names the file, the line and the rule."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from domain.sla_policy import PolicyError, SlaPolicy, describe, parse_policy

DEFAULT_POLICY = Path(__file__).parent.parent / "data" / "sla.toml"

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z_]+)\s*\]\]?")


def line_of(text: str, where: tuple[str | int, ...]) -> int | None:
    """The 1-based line a place in a TOML document is written on: the key's line inside its
    table, else the table's header; None when the document does not spell it."""
    if not where:
        return None
    section = where[0]
    index = where[1] if len(where) > 1 and isinstance(where[1], int) else None
    key = next((w for w in where[1:] if isinstance(w, str)), None)
    seen = -1
    inside = False
    header_line: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            inside = header[2] == section
            if inside:
                seen += 1
                inside = index is None or seen == index
                if inside and header_line is None:
                    header_line = number
            continue
        if inside and key is not None and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return header_line


def parse_text(text: str, source: str = "<policy>") -> SlaPolicy:
    """Parse and validate a policy document's text."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from None
    try:
        return parse_policy(doc)
    except PolicyError as exc:
        line = line_of(text, exc.where)
        at = f" line {line}" if line is not None else ""
        raise PolicyError(f"{source}{at}: {describe(exc.where)}: {exc}", exc.where) from None


def load_policy(path: str | Path = DEFAULT_POLICY) -> SlaPolicy:
    """Read, parse and validate a policy file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read: {exc}") from None
    return parse_text(text, str(path))
