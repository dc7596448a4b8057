"""Load the jurisdiction tree from a GeoJSON file on disk."""

from __future__ import annotations

from pathlib import Path

import orjson

from domain.jurisdiction import Jurisdiction, JurisdictionError, parse_jurisdiction

DEFAULT_JURISDICTION: Path = Path(__file__).parent.parent / "data" / "zhangjiakou.geojson"


def load_jurisdiction(path: str | Path = DEFAULT_JURISDICTION) -> Jurisdiction:
    """Read and validate a GeoJSON FeatureCollection describing the jurisdiction tree.

    Raises JurisdictionError (naming the path and the reason) if the file cannot be read,
    is not valid JSON, or fails validation."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise JurisdictionError(f"{p}: cannot read jurisdiction file: {exc}") from exc
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise JurisdictionError(f"{p}: malformed JSON: {exc}") from exc
    try:
        return parse_jurisdiction(data)
    except JurisdictionError as exc:
        raise JurisdictionError(f"{p}: {exc}", exc.feature) from exc
