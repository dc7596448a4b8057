"""The limits on what a feed may send, the same on every ingest path (HTTP, feed websocket,
MQTT, CAP): one place for the numbers, so no path is looser than another.

The edge (command_center/feed_formats.py, command_center/decoding.py) refuses input past them
with a 4xx (MQTT: a dead letter) naming the limit; the domain keeps the date range as an
invariant of every alert it raises.
"""

from __future__ import annotations

# Nesting of any JSON document on any route (HTTP bodies, feed websocket, MQTT payloads): no
# body we accept goes deeper than 5, and a deeper one is refused before a decoder recurses.
MAX_JSON_DEPTH = 32

MAX_BATCH = 1000  # alerts per request or message (the default of LINKAGE_INGEST_MAX_BATCH)
MAX_EVENT_ID = 200  # the feed's own event id (CAP: "sender/identifier")
MAX_NAME = 128  # camera, grid, label, zone, sub label, a CAP enumeration
MAX_ZONES = 64  # zones of one alert (JSON `zones`; Frigate `current_zones`, `entered_zones`)
MAX_PLATE = 32  # a licence plate
MAX_DESCRIPTION = 2000  # free text kept with an alert (longer CAP text is cut here)
MAX_REF = 128  # the correlation `ref` a feed websocket message carries and gets back
MAX_CAP_AREAS = 64  # <area> blocks in one CAP message
MAX_CAP_POINTS = 2000  # points of one CAP <polygon>

# Every time a feed sends (alert start, end and frame times; CAP <sent>), in UTC. The end is a
# day short of the last date Python can hold: an alert's storm windows (up to a minute after
# its start) must still have a date, or formatting one would fail in the projection.
EARLIEST = 0.0  # 1970-01-01T00:00:00Z
LATEST = 253_402_214_400.0  # 9999-12-31T00:00:00Z
TIME_RANGE = "1970-01-01T00:00:00Z to 9999-12-31T00:00:00Z"


def time_problem(epoch_seconds: float) -> str | None:
    """Why a time (epoch seconds, so UTC whatever offset it was sent with) is outside the
    accepted range; None when it is inside."""
    if EARLIEST <= epoch_seconds <= LATEST:
        return None
    side = "before" if epoch_seconds < EARLIEST else "after"
    bound = TIME_RANGE.split(" to ")[0 if side == "before" else 1]
    return f"is {side} {bound} in UTC; expected a time from {TIME_RANGE}"


__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_BATCH",
    "MAX_CAP_AREAS",
    "MAX_CAP_POINTS",
    "MAX_DESCRIPTION",
    "MAX_EVENT_ID",
    "MAX_JSON_DEPTH",
    "MAX_NAME",
    "MAX_PLATE",
    "MAX_REF",
    "MAX_ZONES",
    "TIME_RANGE",
    "time_problem",
]
