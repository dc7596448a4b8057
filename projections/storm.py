"""Storm detection: tumbling-window alert counts per camera and per grid.

Pure functions, shared by the embedded runner (through the center view fold) and
the faust worker (a windowed table per key). Time comes from the alert's own start
time, never a clock, so a replay finds the same storms.
"""

from __future__ import annotations

from functools import lru_cache

from domain.camera_alert import window_start

WINDOWS: tuple[int, ...] = (10, 60)  # seconds
# (kind, window seconds) -> alerts in one window at which it becomes a storm
THRESHOLDS: dict[tuple[str, int], int] = {
    ("camera", 10): 10,
    ("camera", 60): 30,
    ("grid", 10): 20,
    ("grid", 60): 60,
}

__all__ = ["THRESHOLDS", "WINDOWS", "Window", "is_storm", "keys_for", "tumble", "window_start"]

Window = tuple[int, int]  # (window start, epoch seconds; alerts counted in it)


def storm_key(kind: str, ident: str, size: int) -> str:
    return f"{kind}:{ident}:{size}"


@lru_cache(maxsize=16384)
def keys_for(camera: str | None, grid: str | None) -> tuple[tuple[str, str, str, int, int], ...]:
    """(key, kind, id, window size, threshold) for every window an alert counts in."""
    return tuple(
        (storm_key(kind, ident, size), kind, ident, size, THRESHOLDS[(kind, size)])
        for kind, ident in (("camera", camera), ("grid", grid))
        if ident
        for size in WINDOWS
    )


def tumble(current: Window | None, at: float, size: int) -> tuple[Window, bool]:
    """Count one alert at `at`: (new window state, whether it counted in the current window).

    A later window replaces the current one (tumbling); an alert for an earlier window
    (late delivery) leaves the current window unchanged and is not counted as a storm.
    """
    start = window_start(at, size)
    if current is None or start > current[0]:
        return (start, 1), True
    if start < current[0]:
        return current, False
    return (start, current[1] + 1), True


def is_storm(kind: str, size: int, count: int) -> bool:
    return count >= THRESHOLDS[(kind, size)]
