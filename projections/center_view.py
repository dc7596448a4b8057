"""The live view of one linkage center: a pure fold over incident and alert events.

A view holds counts by status, open cases per grid, a bounded feed of recent events, the
alert summaries (projections/alerts.py) and the urgency queue: the `queue_size` most urgent
open cases (projections/queue.py), never every open case, so its size does not grow with the
number of open cases. The open cases beyond the queue, which it refills from, are kept beside
the view in `Center.cases`, one record per case, never in the view.

`step(center, event)` folds an event into a center (its view and its open cases) unless the
view has already seen that notification, and returns the changes it made to the view: the
delta consoles apply. No clock, no I/O: time comes from the event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from projections.alerts import ALERT_KEYS, alert_changes, fold_alerts, new_alert_view
from projections.cases import (
    NEXT_STATUS,
    STATUSES,
    SUMMARY_CHARS,
    TERMINAL,
    Case,
    case_after,
)
from projections.envelope import Envelope
from projections.patch import Change, View, apply_changes, del_, push, set_
from projections.population import population_changes
from projections.queue import QUEUE_SIZE, OpenCases, queue_changes, queue_item, queue_view

RECENT_LIMIT = 50

__all__ = ["NEXT_STATUS", "QUEUE_SIZE", "RECENT_LIMIT", "STATUSES", "SUMMARY_CHARS", "TERMINAL",
           "Center", "apply", "apply_event", "new_center", "new_view", "restored", "routes_to", "step",
           "step_each", "step_run", "step_runs"]


def new_view(center: str) -> View:
    """An empty view for a center."""
    return {
        "center": center,
        "position": 0,
        "counts": dict.fromkeys(STATUSES, 0),
        "queue": {},
        "grids": {},
        "recent": [],
        **new_alert_view(),
    }


@dataclass(slots=True)
class Center:
    """What one center's fold works on: the view consoles see, and every open case under the
    center (which the view's queue is the most urgent `queue_size` of)."""

    view: View
    cases: OpenCases = field(default_factory=OpenCases)
    queue_size: int = QUEUE_SIZE
    # When a dict, every incident record the fold produces, open or closed, is kept here by id:
    # the per-incident read model's upserts, collected by the runner or worker that set it.
    rows: dict[str, Case] | None = None

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be at least 1; got {self.queue_size}")


def new_center(center: str, queue_size: int = QUEUE_SIZE) -> Center:
    """An empty center."""
    return Center(new_view(center), OpenCases(), queue_size)


def restored(view: View, cases: OpenCases, queue_size: int = QUEUE_SIZE) -> Center:
    """A center from a stored view without its queue and the stored open cases: the queue is
    the most urgent of them, as it was when they were stored."""
    view["queue"] = queue_view(cases, queue_size)
    return Center(view, cases, queue_size)


def _assignee_text(assignee: Any) -> str | None:
    if isinstance(assignee, dict):
        return f"{assignee.get('kind', '')}:{assignee.get('id', '')}"
    return None


def _summary(event: Envelope) -> str:
    data = event.data
    for key in ("description", "reason", "outcome", "note", "comment"):
        text = data.get(key)
        if isinstance(text, str) and text:
            return text[:SUMMARY_CHARS]
    if "assignee" in data:
        return _assignee_text(data["assignee"]) or ""
    if "satisfaction" in data:
        return f"{data['satisfaction']}/5"
    if "of" in data:
        return f"duplicate of {data['of']}"
    return ""


def _actor(event: Envelope) -> str | None:
    actor = event.data.get("actor")
    return actor.get("user") if isinstance(actor, dict) else None


def _count(view: View, counts: dict[str, int], status: str, delta: int) -> Change:
    counts[status] = counts.get(status, view["counts"].get(status, 0)) + delta
    return set_(["counts", status], counts[status])


class _Shared:
    """What one incident event gives every center that holds the same record of the incident:
    the new record, its queue item and its feed entry (values are shared, never changed in place)."""

    __slots__ = ("item", "new", "old", "recent")

    def __init__(self, old: Case | None, new: Case | None) -> None:
        self.old = old  # held, so that its id is not reused while the memo lives
        self.new = new
        self.item: Case | None = None
        self.recent: dict[str, Any] | None = None

    def queue_item(self, case: Case) -> Case:
        """`queue_item(case)`, built once for the new record (a center's entrant is its own)."""
        if case is not self.new:
            return queue_item(case)
        if self.item is None:
            self.item = queue_item(case)
        return self.item


def incident_changes(center: Center, event: Envelope,
                     memo: dict[int, _Shared] | None = None) -> list[Change]:
    """Fold an incident event into the center's open cases; what it changes in the view.

    `memo` (one per event) shares what depends only on the incident's record before the event
    between the centers folding it: their records are the same object, unless one of them missed
    the incident's report."""
    if event.name not in NEXT_STATUS:
        return []
    view = center.view
    old = center.cases.get(event.originator_id)
    shared = memo.get(id(old)) if memo is not None else None
    if shared is None:
        shared = _Shared(old, case_after(old, event))
        if memo is not None:
            memo[id(old)] = shared
    new = shared.new
    changes: list[Change] = []
    counts: dict[str, int] = {}
    grid = old["grid"] if old else event.data.get("grid")
    if old is None and new is not None:
        changes.append(_count(view, counts, "reported", +1))
        if grid is not None:
            changes.append(set_(["grids", grid], view["grids"].get(grid, 0) + 1))
    elif old is not None and new is not None and new is not old:
        if new["status"] != old["status"]:
            changes.append(_count(view, counts, old["status"], -1))
            changes.append(_count(view, counts, new["status"], +1))
        if new["status"] in TERMINAL and grid is not None:
            left = view["grids"].get(grid, 0) - 1
            changes.append(set_(["grids", grid], left) if left > 0 else del_(["grids", grid]))
    changes += queue_changes(view, center.cases, old, new, center.queue_size, shared.queue_item)
    if center.rows is not None and new is not None and new is not old:
        center.rows[new["id"]] = new
    recent = shared.recent
    if recent is None:
        recent = shared.recent = {
            "n": event.notification_id,
            "at": event.at,
            "incident": event.originator_id,
            "type": event.name,
            "actor": _actor(event),
            "grid": grid,
            "summary": _summary(event),
        }
    changes.append(push(["recent"], recent, RECENT_LIMIT))
    return changes


def _alert_changes(center: Center, event: Envelope) -> list[Change]:
    return alert_changes(center.view, event)


def _fold_alerts(center: Center, events: list[Envelope]) -> list[Change]:
    return fold_alerts(center.view, events)


def _population_changes(center: Center, event: Envelope) -> list[Change]:
    return population_changes(center.view, event)


Handler = Callable[[Center, Envelope], list[Change]]

# Routing is data: aggregate name -> handler. Other aggregates register here.
ROUTES: dict[str, Handler] = {"Incident": incident_changes, "CameraAlert": _alert_changes,
                              "Resident": _population_changes}
# Aggregates whose consecutive events may fold as one run: (center, events) -> changes, the same
# view as each event's ROUTES handler in turn gives.
RUNS: dict[str, Callable[[Center, list[Envelope]], list[Change]]] = {"CameraAlert": _fold_alerts}
# The only view keys each RUNS fold reads: centers equal on them fold the same run to equal changes.
RUN_READS: dict[str, tuple[str, ...]] = {"CameraAlert": ALERT_KEYS}


def apply_event(center: Center, event: Envelope) -> list[Change]:
    """Fold an event into a center, with no duplicate check; the changes it made to the view.

    For a caller that knows the event is new by its own marks (the worker's, per partition)."""
    handler = ROUTES.get(event.aggregate)
    if handler is None:
        return []
    return _applied(center, event, handler(center, event))


def _applied(center: Center, event: Envelope, changes: list[Change]) -> list[Change]:
    if event.notification_id > center.view["position"]:
        changes.append(set_(["position"], event.notification_id))
    apply_changes(center.view, changes)
    return changes


def step(center: Center, event: Envelope) -> list[Change]:
    """Fold an event the view has not applied yet; the changes it made ([] for one it has)."""
    if event.notification_id <= center.view["position"]:
        return []
    return apply_event(center, event)


def step_each(centers: list[Center], event: Envelope) -> list[list[Change]]:
    """`step` of the event into each center in turn; the changes each made.

    An incident event folds into its township, district and city, which hold the same record
    of the incident: its new record, queue item and feed entry are built once for them."""
    if len(centers) < 2 or ROUTES.get(event.aggregate) is not incident_changes:
        return [step(center, event) for center in centers]
    memo: dict[int, _Shared] = {}
    return [[] if event.notification_id <= center.view["position"]
            else _applied(center, event, incident_changes(center, event, memo))
            for center in centers]


def step_run(center: Center, events: list[Envelope]) -> list[Change]:
    """Fold a run of events of one aggregate type in RUNS, skipping the ones the view has
    applied: what `step` of each in turn does, in one op per touched key ([] for none)."""
    return step_runs([(center, events)])[0]


def step_runs(runs: list[tuple[Center, list[Envelope]]]) -> list[list[Change]]:
    """`step_run` of each (center, run) in turn; the changes each made.

    An event folds into its township, district and city, whose runs are often the same events
    on views that hold the same values under the keys the run's fold reads (RUN_READS): such a
    center takes the changes folded for the first of them instead of folding the run again
    (values are shared, never changed in place: a run copies what it changes)."""
    fresh_runs: list[tuple[list[Envelope], int]] = []
    leaders: list[int] = []  # for each run, the index of the run whose fold it takes
    # (id of a run, the view's position) -> its events past the position: the centers of an
    # event often hold the same run list (the runner shares it) at the same position.
    filtered: dict[tuple[int, int], tuple[list[Envelope], int]] = {}
    for i, (center, events) in enumerate(runs):
        position = center.view["position"]
        known = filtered.get((id(events), position))
        if known is None:
            start = position
            fresh = []
            for event in events:
                if event.notification_id > position:
                    fresh.append(event)
                    position = event.notification_id
            known = filtered[(id(events), start)] = (fresh, position)
        fresh, position = known
        fresh_runs.append(known)
        leaders.append(next((j for j in range(i) if leaders[j] == j
                             and _same_run(fresh_runs[j][0], fresh)
                             and _same_reads(runs[j][0].view, center.view, fresh)), i))
    folded: list[list[Change]] = []
    results: list[list[Change]] = []
    for i, (center, _) in enumerate(runs):
        fresh, position = fresh_runs[i]
        if not fresh:
            folded.append([])
            results.append([])
            continue
        own = RUNS[fresh[0].aggregate](center, fresh) if leaders[i] == i else folded[leaders[i]]
        folded.append(own)
        changes = [*own, set_(["position"], position)]
        apply_changes(center.view, changes)
        results.append(changes)
    return results


def fold_events(events: Iterable[Envelope], center_of: Callable[[str], Center | None],
                emit: Callable[[str, list[Change]], None]) -> None:
    """Fold events, in order, into the centers they route to, as `step` of each would: the
    consecutive events of a RUNS aggregate fold as one run per center (`step_runs`, a burst of
    alerts becomes a few changes), every other event with `step_each`. `center_of` gives the
    fold of a center (None: not folded here); `emit` gets each center's changes, in order,
    whenever a fold changed something. The runner and the time-travel follower both fold so."""
    runs: dict[str, list[Envelope]] = {}
    folds: dict[str, Center] = {}

    def flush(names: list[str]) -> None:
        pending = [(name, run) for name in names if (run := runs.pop(name, None))]
        if not pending:
            return
        folded = step_runs([(folds[name], run) for name, run in pending])
        for (name, _), changes in zip(pending, folded, strict=True):
            if changes:
                emit(name, changes)

    routed: object = None  # the last event's `centers`, and the ones folded here
    centers: list[str] = []
    # A run all of `centers` hold (one list, appended to once per event) while they stay the
    # same and none of them is flushed; the ids of such lists, which no center appends to on
    # its own (it copies the list first).
    shared: list[Envelope] | None = None
    shared_ids: set[int] = set()
    for event in events:
        # Consecutive events of a burst have equal `centers`: the filtered list is kept while
        # they do (a list compare, in C).
        if routed is None or event.data.get("centers") != routed:
            routed = event.data.get("centers")
            centers = []
            for name in routes_to(event):
                fold = folds.get(name) or center_of(name)
                if fold is not None:
                    folds[name] = fold
                    centers.append(name)
            shared = None
        if event.type.partition(".")[0] in RUNS:
            if shared is not None:
                shared.append(event)
                continue
            if len(centers) > 1 and not any(name in runs for name in centers):
                shared = [event]
                shared_ids.add(id(shared))
                for name in centers:
                    runs[name] = shared
                continue
            for name in centers:
                run = runs.get(name)
                if run is None:
                    run = runs[name] = []
                elif id(run) in shared_ids:
                    run = runs[name] = list(run)
                run.append(event)
            continue
        flush(centers)
        shared = None
        folded = step_each([folds[name] for name in centers], event)
        for name, changes in zip(centers, folded, strict=True):
            if changes:
                emit(name, changes)
    flush(list(runs))


def _same_run(a: list[Envelope], b: list[Envelope]) -> bool:
    if a is b:
        return bool(a)
    return bool(a) and len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _same_reads(a: View, b: View, run: list[Envelope]) -> bool:
    return all(a.get(key) == b.get(key) for key in RUN_READS[run[0].aggregate])


def apply(center: Center, event: Envelope) -> Center:
    """Fold one event into a center (in place); a notification already applied changes nothing."""
    step(center, event)
    return center


def routes_to(event: Envelope) -> list[str]:
    """The centers whose views an event updates: its township, district and city."""
    return event.centers
