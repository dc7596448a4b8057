"""Loading the directory file (TOML, or JSON by extension): parties, grid workers, role names."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import orjson

from domain.access import ROLES
from domain.directory import Directory, DirectoryError, parse_directory
from domain.jurisdiction import Jurisdiction

log = logging.getLogger(__name__)

DEFAULT_DIRECTORY = Path(__file__).parent.parent / "data" / "directory.toml"


def load_directory(path: str | Path, jurisdiction: Jurisdiction, strict: bool = True) -> Directory:
    """Parse and validate; DirectoryError names the file, the entry and the problem.

    Not strict (the bundled sample against another tree): entries outside the tree are left out."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DirectoryError(f"{path}: cannot read: {exc}") from None
    try:
        data = orjson.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise DirectoryError(f"{path}: not valid {kind}: {exc}") from None
    try:
        directory = parse_directory(data, jurisdiction, ROLES, strict=strict)
    except DirectoryError as exc:
        raise DirectoryError(f"{path}: {exc}", exc.entry) from None
    if not strict and not directory.parties:
        log.warning("directory %s: no party serves a center of this jurisdiction tree "
                    "(set LINKAGE_DIRECTORY to a directory for this tree)", path)
    return directory
