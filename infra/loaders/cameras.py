"""The camera registry file: camera id → grid (and its zones), checked against the jurisdiction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import orjson

from domain.jurisdiction import Jurisdiction

log = logging.getLogger(__name__)

DEFAULT_CAMERAS = Path(__file__).parent.parent / "data" / "cameras.json"


class CameraRegistryError(ValueError):
    """A camera registry file that cannot be used; the message names the camera and problem."""


@dataclass(frozen=True)
class Camera:
    id: str
    grid: str
    name: str = ""
    zones: tuple[str, ...] = ()


class CameraRegistry:
    def __init__(self, cameras: list[Camera]) -> None:
        self._cameras = {c.id: c for c in cameras}

    def grid_of(self, camera_id: str) -> str:
        """The camera's grid; KeyError for a camera not in the registry."""
        return self._cameras[camera_id].grid

    def __contains__(self, camera_id: object) -> bool:
        return camera_id in self._cameras

    def __len__(self) -> int:
        return len(self._cameras)

    def cameras(self) -> list[Camera]:
        return list(self._cameras.values())


def parse_cameras(data: object, jurisdiction: Jurisdiction, strict: bool = True) -> CameraRegistry:
    """Validate a registry. Not strict (the bundled sample against another jurisdiction tree):
    cameras in grids the tree does not have are left out, with a warning, instead of refused."""
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
        raise CameraRegistryError('expected {"cameras": [{"id": ..., "grid": ...}, ...]}')
    cameras: list[Camera] = []
    seen: set[str] = set()
    skipped = 0
    for index, raw in enumerate(data["cameras"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
            raise CameraRegistryError(f"camera #{index + 1}: needs a non-empty string 'id'")
        camera_id = raw["id"]
        grid = raw.get("grid")
        unit = jurisdiction.get(grid) if isinstance(grid, str) else None
        if (unit is None or unit.level != "grid") and not strict:
            skipped += 1
            continue
        if unit is None or unit.level != "grid":
            raise CameraRegistryError(
                f"camera {camera_id!r}: grid {grid!r} is not a grid of the jurisdiction tree")
        if camera_id in seen:
            raise CameraRegistryError(f"camera {camera_id!r}: listed twice")
        seen.add(camera_id)
        zones = raw.get("zones", [])
        if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
            raise CameraRegistryError(f"camera {camera_id!r}: zones must be a list of strings")
        cameras.append(Camera(camera_id, str(grid), str(raw.get("name", "")), tuple(zones)))
    if skipped:
        log.warning("camera registry: %d cameras are in grids this jurisdiction tree does not have; "
                    "left out (set LINKAGE_CAMERAS to a registry for this tree)", skipped)
    return CameraRegistry(cameras)


def load_cameras(path: str | Path, jurisdiction: Jurisdiction, strict: bool = True) -> CameraRegistry:
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise CameraRegistryError(f"{path}: cannot read: {exc}") from None
    except orjson.JSONDecodeError as exc:
        raise CameraRegistryError(f"{path}: not JSON: {exc}") from None
    try:
        return parse_cameras(data, jurisdiction, strict)
    except CameraRegistryError as exc:
        raise CameraRegistryError(f"{path}: {exc}") from None
