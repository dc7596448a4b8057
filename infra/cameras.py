"""The camera registry file: camera id → grid (and its zones), checked against the jurisdiction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from domain.jurisdiction import Jurisdiction

DEFAULT_CAMERAS = Path(__file__).parent / "data" / "cameras.json"


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


def parse_cameras(data: object, jurisdiction: Jurisdiction) -> CameraRegistry:
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
        raise CameraRegistryError('expected {"cameras": [{"id": ..., "grid": ...}, ...]}')
    cameras: list[Camera] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["cameras"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
            raise CameraRegistryError(f"camera #{index + 1}: needs a non-empty string 'id'")
        camera_id = raw["id"]
        grid = raw.get("grid")
        unit = jurisdiction.get(grid) if isinstance(grid, str) else None
        if unit is None or unit.level != "grid":
            raise CameraRegistryError(
                f"camera {camera_id!r}: grid {grid!r} is not a grid of the jurisdiction tree")
        if camera_id in seen:
            raise CameraRegistryError(f"camera {camera_id!r}: listed twice")
        seen.add(camera_id)
        zones = raw.get("zones", [])
        if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
            raise CameraRegistryError(f"camera {camera_id!r}: zones must be a list of strings")
        cameras.append(Camera(camera_id, grid, str(raw.get("name", "")), tuple(zones)))
    return CameraRegistry(cameras)


def load_cameras(path: str | Path, jurisdiction: Jurisdiction) -> CameraRegistry:
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise CameraRegistryError(f"{path}: cannot read: {exc}") from None
    except orjson.JSONDecodeError as exc:
        raise CameraRegistryError(f"{path}: not JSON: {exc}") from None
    try:
        return parse_cameras(data, jurisdiction)
    except CameraRegistryError as exc:
        raise CameraRegistryError(f"{path}: {exc}") from None
