"""What a raw feed payload names, read without trusting it (it may be cut short or not JSON)."""

from __future__ import annotations

import re

import orjson

_CAMERA = re.compile(r'"camera"\s*:\s*"((?:[^"\\]|\\.){1,200})"')


def camera_of(payload: bytes) -> str | None:
    """The camera a payload names (Frigate's `after`/`before`, or a top-level `camera`)."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        found = _CAMERA.search(payload.decode("utf-8", "replace"))
        return found[1] if found else None
    if isinstance(data, dict):
        for part in (data.get("after"), data.get("before"), data):
            if isinstance(part, dict) and isinstance(part.get("camera"), str):
                return str(part["camera"])
    return None
