"""What camera-alert events change in a center's view: the alert feed, counts and storms.

View keys this module owns:
- ``alerts``: recent unacknowledged alerts by id (at most ALERTS_LIMIT, oldest evicted);
  an alert raised inside a storm is not listed one by one, it counts in the storm instead,
  unless a rule raised its priority or opened an incident.
- ``alert_counts``: raised, unacknowledged, acknowledged, dismissed, linked, escalated, in_storm.
- ``storm_windows``: [start, count, {label: n}, first notification] of the current window per key
  (camera/grid × 10 s/60 s), until it becomes a storm.
- ``storms``: one summary per key that passed its threshold, updated in place; `acked` is its count
  when its alerts were acknowledged together (POST /api/storms/acknowledge), absent before.
Pure: time comes from the alert's own start time.

A run of alert events folds in one pass (`fold_alerts`): the run works on copies of the keys it
touches and gives one op per touched key, so a burst of thousands of alerts costs a few
dictionary updates per alert and a bounded delta. One event is a run of one (`alert_changes`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from projections.envelope import Envelope
from projections.patch import Change, View, del_, set_
from projections.storm import Window, keys_for, tumble

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
    if type(at) is int:  # a window's start or end: whole seconds, one datetime per day
        day, second = divmod(at, 86_400)
        hour, second = divmod(second, 3600)
        minute, second = divmod(second, 60)
        return f"{_day(day)}T{hour:02d}:{minute:02d}:{second:02d}+00:00"
    return datetime.fromtimestamp(at, UTC).isoformat()


@lru_cache(maxsize=64)
def _day(day: int) -> str:
    """The date of a day since the epoch, as isoformat() writes it."""
    return datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()


# Every key of a view the alert fold reads: two views equal on these fold a run to equal changes.
ALERT_KEYS = ("alerts", "alert_counts", "storm_windows", "storms")
ZERO_COUNTS: dict[str, int] = dict.fromkeys(COUNT_KEYS, 0)
RAISED = "CameraAlert.Raised"


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


def _n(listed: Any) -> Any:
    """A listed alert's notification id (its item's `n`)."""
    if type(listed) is Envelope:
        return listed.notification_id
    return listed.get("n", 0)


class _Run:
    """The alert keys of one view while a run of events folds into it.

    Copy on write: the view and every object in it stay untouched; an object is copied the
    first time the run changes it and is then changed in place (`_own` holds those copies).
    `changes()` gives one op per touched key, which applied to the view gives what folding
    the events one by one gives.
    """

    def __init__(self, view: View) -> None:
        self._base_alerts: dict[str, Any] = view.get("alerts") or {}
        # Listed alerts by id: each an item, or the Raised event whose item is not built yet
        # (`listed` builds it): a burst lists and evicts most of its alerts within the run.
        self.alerts: dict[str, Any] = dict(self._base_alerts)
        self.counts: dict[str, int] = {**ZERO_COUNTS, **(view.get("alert_counts") or {})}
        self.storms: dict[str, Any] = dict(view.get("storms") or {})
        self._base_windows: dict[str, Any] = view.get("storm_windows") or {}
        self.windows: dict[str, Any] = {}  # touched window keys -> new value, None when deleted
        self.touched_alerts: set[str] = set()
        self.touched_storms: set[str] = set()
        # Active storms this run owns, labels included: one more alert there is two increments.
        self.hot: dict[str, dict[str, Any]] = {}
        # What the last raised alert counted in, when every one of its windows took a fast path:
        # a next alert of the same camera, grid and label in the same windows counts in the same
        # objects (`_repeat`). Cleared by anything that may change which objects those are.
        self.repeat: _Repeat | None = None
        self.counted = False
        self._own: dict[int, Any] = {}  # id -> object: copies this run made (kept alive)
        # (n, alert id) of listed alerts, a heap built at the run's first eviction: a burst
        # evicts once per alert, and a scan of the whole feed each time was most of a replay.
        self._by_n: list[tuple[int, str]] | None = None

    def count(self, key: str, delta: int) -> None:
        self.counts[key] += delta
        self.counted = True

    def own(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy of obj this run may change (obj itself if it is already one)."""
        if id(obj) in self._own:
            return obj
        mine = dict(obj)
        self._own[id(mine)] = mine
        return mine

    def adopt(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Mark an object this run built as its own."""
        self._own[id(obj)] = obj
        return obj

    def window(self, key: str) -> Any:
        if key in self.windows:
            return self.windows[key]
        return self._base_windows.get(key)

    def set_alert(self, alert_ref: str, item: dict[str, Any] | None) -> None:
        if item is None:
            self.alerts.pop(alert_ref, None)
        else:
            self.alerts[alert_ref] = item
        self.touched_alerts.add(alert_ref)

    def set_storm(self, key: str, storm: dict[str, Any] | None) -> None:
        self.repeat = None
        self.hot.pop(key, None)
        if storm is None:
            self.storms.pop(key, None)
        else:
            self.storms[key] = storm
        self.touched_storms.add(key)

    def listed(self, alert_ref: str) -> dict[str, Any] | None:
        """The listed alert's item, None when it is not listed."""
        listed = self.alerts.get(alert_ref)
        if type(listed) is Envelope:
            listed = self.alerts[alert_ref] = self.adopt(_item(listed, listed.data))
        return listed

    def list_raised(self, event: Envelope) -> None:
        """`list_alert(_item(event, event.data))`, the item built only when it is read (`listed`):
        most of a burst's alerts are evicted within its run."""
        alert_ref = event.originator_id
        alerts = self.alerts
        if alert_ref not in alerts and len(alerts) >= ALERTS_LIMIT:
            self.set_alert(self._oldest_alert(), None)
        alerts[alert_ref] = event
        self.touched_alerts.add(alert_ref)
        if self._by_n is not None:
            heapq.heappush(self._by_n, (event.notification_id, alert_ref))

    def list_alert(self, item: dict[str, Any]) -> None:
        """Add an alert to the feed, evicting the oldest past the limit."""
        if item["id"] not in self.alerts and len(self.alerts) >= ALERTS_LIMIT:
            self.set_alert(self._oldest_alert(), None)
        self.set_alert(item["id"], self.adopt(item))
        if self._by_n is not None:
            heapq.heappush(self._by_n, (item.get("n", 0), item["id"]))

    def _oldest_alert(self) -> str:
        """The listed alert with the smallest n (an alert's n never changes while listed)."""
        heap = self._by_n
        if heap is None:
            heap = self._by_n = [(_n(a), ref) for ref, a in self.alerts.items()]
            heapq.heapify(heap)
        while True:
            n, ref = heap[0]
            listed = self.alerts.get(ref)
            if listed is not None and _n(listed) == n:
                return ref
            heapq.heappop(heap)  # evicted, handled or listed again since: a stale entry

    def changes(self) -> list[Change]:
        changes: list[Change] = []
        base = self._base_alerts
        for alert_ref in self.touched_alerts:
            item = self.listed(alert_ref)
            if item is not None:
                changes.append(set_(["alerts", alert_ref], item))
            elif alert_ref in base:  # not one listed and evicted within the run
                changes.append(del_(["alerts", alert_ref]))
        for key, window in self.windows.items():
            changes.append(del_(["storm_windows", key]) if window is None
                           else set_(["storm_windows", key], window))
        for key in self.touched_storms:
            storm = self.storms.get(key)
            changes.append(del_(["storms", key]) if storm is None else set_(["storms", key], storm))
        if self.counted:
            changes.append(set_(["alert_counts"], self.counts))
        return changes


class _Repeat:
    """The windows one raised alert counted in, all by a fast path: the storms it counted in
    (`run.hot`) and the windows the run owns with their thresholds, for alerts at a time in
    [lo, hi), where each of its windows has the same start."""

    __slots__ = ("camera", "grid", "hi", "in_storm", "lo", "storms", "windows")

    def __init__(self, camera: Any, grid: Any, lo: float, hi: float,
                 storms: list[dict[str, Any]], windows: list[tuple[list[Any], int]]) -> None:
        self.camera = camera
        self.grid = grid
        self.lo = lo
        self.hi = hi
        self.storms = storms
        self.windows = windows
        self.in_storm = bool(storms)


def _repeat(run: _Run, repeat: _Repeat, label: str) -> bool | None:
    """Count one more alert in the objects the last one counted in (the caller checked that it
    has the same camera and grid and falls in the same windows); None, changing nothing,
    when one of the windows would reach its threshold (the general path makes the storm)."""
    windows = repeat.windows
    for window, threshold in windows:
        if window[1] + 1 >= threshold:
            return None
    for storm in repeat.storms:
        labels = storm["labels"]
        labels[label] = labels.get(label, 0) + 1
        storm["count"] += 1
    for window, _ in windows:
        labels = window[2]
        labels[label] = labels.get(label, 0) + 1
        window[1] += 1
    if repeat.in_storm:
        run.counts["in_storm"] += 1
    return repeat.in_storm


def _windows(run: _Run, event: Envelope) -> bool:
    """Count a raised alert in its camera and grid windows; whether it is in a storm.

    Two fast paths cover nearly every alert of a burst: one more alert in a storm this run owns
    (`run.hot`), or in a window this run wrote (`run.windows`: changed in place, no storm of its
    key is active then). Anything else (a new window, a late alert, a storm from the view) takes
    the general path. When the previous raised alert took only fast paths and this one has its
    camera and grid and the same window starts, it counts in the same objects
    (`run.repeat`) without looking its keys up again."""
    data = event.data
    at = data.get("start_time")
    if not isinstance(at, (int, float)):
        return False
    label = str(data.get("label", "alert"))
    camera = data.get("camera")
    grid = data.get("grid")
    repeat = run.repeat
    if (repeat is not None and repeat.lo <= at < repeat.hi and camera == repeat.camera
            and grid == repeat.grid):
        repeated = _repeat(run, repeat, label)
        if repeated is not None:
            return repeated
    run.repeat = None
    in_storm = False
    storms = run.storms
    hot = run.hot
    owned = run.windows
    fast = True  # every key so far took a fast path
    counted_storms: list[dict[str, Any]] = []
    counted_windows: list[tuple[list[Any], int]] = []
    lo: float = float("-inf")
    hi: float = float("inf")
    for key, kind, ident, size, threshold in keys_for(camera, grid):
        start = int(at // size) * size
        if start > lo:
            lo = start
        if start + size < hi:
            hi = start + size
        storm: dict[str, Any] | None = hot.get(key)
        if storm is not None and start == storm["start_ts"]:
            in_storm = True
            labels = storm["labels"]
            labels[label] = labels.get(label, 0) + 1
            storm["count"] += 1
            counted_storms.append(storm)
            continue
        window = owned.get(key)
        if window is not None and window[0] == start:
            labels = window[2]
            labels[label] = labels.get(label, 0) + 1
            count = window[1] = window[1] + 1
            if count < threshold:
                counted_windows.append((window, threshold))
                continue
            fast = False
            storm, window_labels, first_n = storms.get(key), labels, window[3]
        else:
            fast = False
            if storm is None:
                storm = storms.get(key)
            active = storm is not None and bool(storm.get("active"))
            window = None
            current: Window | None
            if storm is not None and active:
                if start == storm["start_ts"]:
                    in_storm = True
                    storm = run.own(storm)
                    labels = storm["labels"] = run.own(storm["labels"])
                    labels[label] = labels.get(label, 0) + 1
                    storm["count"] += 1
                    run.set_storm(key, storm)
                    hot[key] = storm
                    continue
                current = (storm["start_ts"], storm["count"])  # the summary holds the count
            else:
                window = run.window(key)
                current = (window[0], window[1]) if window else None
            state, counted = tumble(current, at, size)
            if not counted:
                continue  # a late alert for a window already past
            start, count = state
            window_labels = {}
            first_n = event.notification_id  # where a scan for this window's alerts may start
            if window and current is not None and current[0] == start:
                window_labels = dict(window[2]) if len(window) > 2 else {}
                first_n = window[3] if len(window) > 3 else 1
            window_labels[label] = window_labels.get(label, 0) + 1
            if count < threshold:
                if storm is not None and active:
                    stopped = run.own(storm)
                    stopped["active"] = False
                    run.set_storm(key, stopped)
                owned[key] = [start, count, window_labels, first_n]
                continue
        in_storm = True
        if storm is None and len(storms) >= STORMS_LIMIT:
            run.set_storm(_oldest_storm(storms), None)
        owned[key] = None
        new_storm = {
            "key": key, "kind": kind, "id": ident, "window": size, "start_ts": start,
            "start": _iso(start), "end": _iso(start + size),
            "threshold": threshold, "count": count,
            "first_at": event.at, "first_n": event.notification_id, "window_first_n": first_n,
            "labels": run.adopt(window_labels), "active": True,
        }
        run.set_storm(key, run.adopt(new_storm))
    if in_storm:
        run.counts["in_storm"] += 1
    if fast:
        run.repeat = _Repeat(camera, grid, lo, hi, counted_storms, counted_windows)
    return in_storm


def _oldest_storm(storms: dict[str, Any]) -> str:
    """The storm to evict: the oldest inactive one, else the oldest. Ties (storms one alert
    started) go to the smallest key, not to the dict's order, which a run's changes and a
    replay's batches do not keep."""
    inactive = [s for s in storms.values() if not s.get("active")]
    pool = inactive or list(storms.values())
    return str(min(pool, key=lambda s: (s.get("first_n", 0), s["key"]))["key"])


def _storm_acknowledged(run: _Run, ref: str) -> None:
    """An alert acknowledged with a storm window ("kind:id:size@window start"): its summary
    records how many alerts it held then (`acked`). A console leaves out a storm whose `acked`
    equals its `count`; one more alert in the window brings it back."""
    key, _, start = ref.rpartition("@")
    storm = run.storms.get(key)
    if storm is None or str(storm.get("start_ts")) != start or storm.get("acked") == storm["count"]:
        return
    mine = run.own(storm)
    mine["acked"] = mine["count"]
    run.set_storm(key, mine)


def _fold(run: _Run, event: Envelope) -> None:
    """Fold one CameraAlert event into the run."""
    if event.type == RAISED:  # by far the most frequent: no more work than it needs
        counts = run.counts
        counts["raised"] += 1
        counts["unacknowledged"] += 1
        run.counted = True
        if not _windows(run, event):
            run.list_raised(event)
        return
    run.repeat = None  # only consecutive raised alerts repeat one another's windows
    name = event.name
    data = event.data
    alert_ref = event.originator_id
    listed = run.listed(alert_ref)
    if name in ("Updated", "Ended"):
        if listed is None:
            return
        updates: dict[str, Any] = {}
        for key, value in (data.get("changes") or {}).items():
            if key in ("score", "top_score"):
                updates["score"] = value
            elif key in ("zones", "plate"):
                updates[key] = value
        if name == "Ended":
            updates["ended"] = True
        if updates:
            item = run.own(listed)
            item.update(updates)
            run.set_alert(alert_ref, item)
    elif name == "RuleFired":
        if data.get("incident"):
            if data.get("was") == "new":
                run.count("unacknowledged", -1)
            run.count("escalated", +1)
            if listed is not None:
                run.set_alert(alert_ref, None)
        elif data.get("was") == "new":
            item = _item(event, data.get("alert") or {}, data.get("priority") or "high")
            if listed is not None:
                item["n"] = listed.get("n", item["n"])
            item["rule"] = data.get("rule")
            run.list_alert(item)
    elif name in HANDLED:
        if data.get("was") == "new":
            run.count("unacknowledged", -1)
        run.count(HANDLED[name], +1)
        if listed is not None:
            run.set_alert(alert_ref, None)
        if name == "Acknowledged" and data.get("storms"):
            for ref in data["storms"]:
                _storm_acknowledged(run, str(ref))


def fold_alerts(view: View, events: Iterable[Envelope]) -> list[Change]:
    """The changes a run of CameraAlert events makes to a center's view, one op per touched key.

    Applying them gives the view that applying each event's `alert_changes` in turn gives."""
    run = _Run(view)
    for event in events:
        _fold(run, event)
    return run.changes()


def alert_changes(view: View, event: Envelope) -> list[Change]:
    """What one CameraAlert event changes in a center's view."""
    return fold_alerts(view, (event,))
