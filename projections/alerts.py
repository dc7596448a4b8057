"""What camera-alert events change in a center's view: the alert feed, counts and storms.

View keys this module owns:
- ``alerts``: recent unacknowledged alerts by id (at most ALERTS_LIMIT, oldest evicted);
  an alert raised inside a storm is not listed one by one, it counts in the storm instead,
  unless a rule raised its priority or opened an incident.
- ``alert_counts``: raised, unacknowledged, acknowledged, dismissed, linked, escalated, in_storm.
- ``storm_windows``: [start, count, {label: n}, first notification] of the current window per key
  (camera/grid × 10 s/60 s), until it becomes a storm.
- ``storms``: one summary per key that passed its threshold, updated in place.
Pure: time comes from the alert's own start time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from projections.envelope import Envelope
from projections.patch import Change, View, del_, set_
from projections.storm import THRESHOLDS, Window, is_storm, keys_for, tumble, window_start

ALERTS_LIMIT = 100
STORMS_LIMIT = 50
COUNT_KEYS = ("raised", "unacknowledged", "acknowledged", "dismissed", "linked", "escalated",
              "in_storm")
HANDLED: dict[str, str] = {
    "Acknowledged": "acknowledged",
    "Dismissed": "dismissed",
    "LinkedToIncident": "linked",
    "IncidentCreated": "escalated",
}


def new_alert_view() -> dict[str, Any]:
    return {
        "alerts": {},
        "alert_counts": dict.fromkeys(COUNT_KEYS, 0),
        "storm_windows": {},
        "storms": {},
    }


@lru_cache(maxsize=4096)
def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


class _Counts:
    """Counter changes within one event: one op for the whole counts object."""

    def __init__(self, view: View) -> None:
        self.view_counts: dict[str, int] = view.get("alert_counts") or {}
        self.values: dict[str, int] = {}

    def add(self, key: str, delta: int) -> None:
        self.values[key] = self.values.get(key, self.view_counts.get(key, 0)) + delta

    def changes(self) -> list[Change]:
        if not self.values:
            return []
        return [set_(["alert_counts"], {**dict.fromkeys(COUNT_KEYS, 0), **self.view_counts,
                                        **self.values})]


def _item(event: Envelope, alert: dict[str, Any], priority: str = "normal") -> dict[str, Any]:
    return {
        "id": event.originator_id,
        "n": event.notification_id,
        "kind": alert.get("kind"),
        "camera": alert.get("camera"),
        "grid": alert.get("grid"),
        "label": alert.get("label"),
        "score": alert.get("top_score", alert.get("score")),
        "zones": alert.get("zones") or [],
        "plate": alert.get("plate"),
        "at": alert.get("at"),
        "priority": priority,
        "ended": alert.get("end_time") is not None,
        "description": str(alert.get("description") or "")[:80],
    }


def _list(view: View, item: dict[str, Any]) -> list[Change]:
    """Add an alert to the feed, evicting the oldest past the limit."""
    alerts: dict[str, Any] = view.get("alerts") or {}
    changes = [set_(["alerts", item["id"]], item)]
    if item["id"] not in alerts and len(alerts) >= ALERTS_LIMIT:
        oldest = min(alerts.values(), key=lambda a: a.get("n", 0))
        changes.append(del_(["alerts", oldest["id"]]))
    return changes


def _windows(view: View, event: Envelope, counts: _Counts) -> tuple[list[Change], bool]:
    """Count the alert in its camera and grid windows; (changes, whether it is in a storm)."""
    data = event.data
    at = data.get("start_time")
    if not isinstance(at, (int, float)):
        return [], False
    windows: dict[str, Any] = view.get("storm_windows") or {}
    storms: dict[str, Any] = view.get("storms") or {}
    changes: list[Change] = []
    in_storm = False
    label = str(data.get("label", "alert"))
    for key, kind, ident, size in keys_for(data.get("camera"), data.get("grid")):
        storm = storms.get(key)
        if storm is not None and storm.get("active") and window_start(at, size) == storm["start_ts"]:
            # The common case in a burst: one more alert in a running storm. One op per alert
            # and key, and a batch's ops on a key compact to one.
            in_storm = True
            labels = storm["labels"]
            changes.append({"op": "set", "path": ["storms", key], "value": {
                **storm, "count": storm["count"] + 1,
                "labels": {**labels, label: labels.get(label, 0) + 1}}})
            continue
        current: Window | None
        # While a storm lasts its summary holds the window count: two ops per alert and key.
        if storm is not None and storm.get("active"):
            current = (storm["start_ts"], storm["count"])
        else:
            window = windows.get(key)
            current = (window[0], window[1]) if window else None
        state, counted = tumble(current, at, size)
        if not counted:
            continue
        start, count = state
        window_labels: dict[str, int] = {}
        first_n = event.notification_id  # where a scan for this window's alerts may start
        if current is not None and current[0] == start and key in windows:
            window = windows[key]
            window_labels = dict(window[2]) if len(window) > 2 else {}
            first_n = window[3] if len(window) > 3 else 1
        window_labels[label] = window_labels.get(label, 0) + 1
        if not is_storm(kind, size, count):
            if storm is not None and storm.get("active"):
                changes.append(set_(["storms", key, "active"], False))
            changes.append(set_(["storm_windows", key], [start, count, window_labels, first_n]))
            continue
        in_storm = True
        if storm is None and len(storms) >= STORMS_LIMIT:
            changes.append(del_(["storms", _oldest_storm(storms)]))
        changes.append(del_(["storm_windows", key]))
        changes.append(set_(["storms", key], {
            "key": key, "kind": kind, "id": ident, "window": size, "start_ts": start,
            "start": _iso(start), "end": _iso(start + size),
            "threshold": THRESHOLDS[(kind, size)], "count": count,
            "first_at": event.at, "first_n": event.notification_id, "window_first_n": first_n,
            "labels": window_labels, "active": True,
        }))
    if in_storm:
        counts.add("in_storm", +1)
    return changes, in_storm


def _oldest_storm(storms: dict[str, Any]) -> str:
    inactive = [s for s in storms.values() if not s.get("active")]
    pool = inactive or list(storms.values())
    return str(min(pool, key=lambda s: s.get("first_n", 0))["key"])


def alert_changes(view: View, event: Envelope) -> list[Change]:
    """What a CameraAlert event changes in a center's view."""
    name = event.name
    data = event.data
    alert_ref = event.originator_id
    listed = (view.get("alerts") or {}).get(alert_ref)
    counts = _Counts(view)
    changes: list[Change] = []
    if name == "Raised":
        counts.add("raised", +1)
        counts.add("unacknowledged", +1)
        window_changes, in_storm = _windows(view, event, counts)
        changes += window_changes
        if not in_storm:
            changes += _list(view, _item(event, data))
    elif name in ("Updated", "Ended"):
        if listed is not None:
            for key, value in (data.get("changes") or {}).items():
                if key in ("score", "top_score"):
                    changes.append(set_(["alerts", alert_ref, "score"], value))
                elif key in ("zones", "plate"):
                    changes.append(set_(["alerts", alert_ref, key], value))
            if name == "Ended":
                changes.append(set_(["alerts", alert_ref, "ended"], True))
    elif name == "RuleFired":
        if data.get("incident"):
            if data.get("was") == "new":
                counts.add("unacknowledged", -1)
            counts.add("escalated", +1)
            if listed is not None:
                changes.append(del_(["alerts", alert_ref]))
        elif data.get("was") == "new":
            priority = data.get("priority") or "high"
            item = _item(event, data.get("alert") or {}, priority)
            if listed is not None:
                item["n"] = listed.get("n", item["n"])
            item["rule"] = data.get("rule")
            changes += _list(view, item)
    elif name in HANDLED:
        if data.get("was") == "new":
            counts.add("unacknowledged", -1)
        counts.add(HANDLED[name], +1)
        if listed is not None:
            changes.append(del_(["alerts", alert_ref]))
    return changes + counts.changes()
