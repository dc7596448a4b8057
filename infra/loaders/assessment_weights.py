"""Loading the assessment weights file (TOML): a `WeightsError` names the file and the line."""

from __future__ import annotations

import tomllib
from pathlib import Path

from infra.loaders.sla_policy import line_of
from projections.assessment import Weights, WeightsError, parse_weights

DEFAULT_WEIGHTS_FILE = Path(__file__).parent.parent / "data" / "assessment_weights.toml"


def parse_weights_text(text: str, source: str = "<weights>") -> Weights:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WeightsError(f"{source}: not valid TOML: {exc}") from None
    try:
        return parse_weights(doc)
    except WeightsError as exc:
        line = line_of(text, exc.where)
        at = f" line {line}" if line is not None else ""
        key = f" key {exc.where[-1]!r}:" if len(exc.where) > 1 else ""
        raise WeightsError(f"{source}{at}:{key} {exc}", exc.where) from None


def load_weights(path: str | Path = DEFAULT_WEIGHTS_FILE) -> Weights:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path}: cannot read: {exc}") from None
    return parse_weights_text(text, str(path))
