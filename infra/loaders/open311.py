"""The Open311 service catalog file (JSON; command_center/open311_catalog.py says what it holds)."""

from __future__ import annotations

from pathlib import Path

import orjson

from command_center.open311_catalog import Catalog, CatalogError, parse_catalog

DEFAULT_OPEN311_SERVICES = Path(__file__).parent.parent / "data" / "open311_services.json"


def load_catalog(path: str | Path) -> Catalog:
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise CatalogError(f"Open311 service catalog {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise CatalogError(f"Open311 service catalog {path} is not JSON: {exc}") from None
    return parse_catalog(data)
