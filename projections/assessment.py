"""Assessment (考核): what every township, district and department did, day by day, as a pure
fold over the whole history; weeks and months are sums of days.

Per unit and local day it counts: intake; each timed step done and done on time (accept,
dispatch, acknowledge, resolve, return visit); late steps; escalations; supervision orders
received, met on time and overdue; reopens; the satisfaction sum and count. A case's township and
district are credited with every step of it; the department a case was dispatched to with its
acknowledge, resolve, reopens and satisfaction. Rates and the composite score are computed when
asked (`rows`), from counts, so the fold is additive and replaying the history gives the same
numbers. Besides the counts, the fold keeps a few fields per open case and per open order
(dropped when they end): nothing else grows with the history but the days themselves.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, NamedTuple

from projections.cases import utc_text
from projections.envelope import Envelope

# The counters of one unit on one day, by position.
COUNTERS = (
    "intake",
    "accept_timed", "accept_on_time", "dispatch_timed", "dispatch_on_time",
    "acknowledge_timed", "acknowledge_on_time", "resolve_timed", "resolve_on_time",
    "visit_timed", "visit_on_time",
    "late", "escalations", "orders_received", "orders_met", "orders_overdue",
    "reopens", "resolved", "satisfaction_sum", "satisfaction_count",
)
C = {name: i for i, name in enumerate(COUNTERS)}
EMPTY = (0,) * len(COUNTERS)
# One of a counter, by name: what `Assessment._add` takes.
ONE = {name: (i, 1) for i, name in enumerate(COUNTERS)}
STEP_EVENTS = {"Accepted": "accept", "Dispatched": "dispatch", "Acknowledged": "acknowledge",
               "Resolved": "resolve", "ReturnVisited": "visit"}
# Steps a department handling a case is answerable for.
DEPARTMENT_STEPS = frozenset({"acknowledge", "resolve"})
TERMINAL_EVENTS = frozenset({"Rejected", "MarkedDuplicate", "Closed"})
PERIODS = ("day", "week", "month")
DEPARTMENT = "department:"
# The rates a composite score can weigh, each in [0, 1] (None when there is nothing to rate).
METRICS = ("accept_on_time", "dispatch_on_time", "acknowledge_on_time", "resolve_on_time",
           "visit_on_time", "orders_met_on_time", "no_reopen", "satisfaction")
DEFAULT_OFFSET = timezone(timedelta(hours=8))


class WeightsError(ValueError):
    """A weights document that breaks a rule; `where` names the section and key."""

    def __init__(self, message: str, where: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True, slots=True)
class Weights:
    """The composite score's weight per metric (a metric without data is left out)."""

    weights: Mapping[str, float]

    def score(self, metrics: Mapping[str, float | None]) -> float | None:
        total = weight = 0.0
        for name, w in self.weights.items():
            value = metrics.get(name)
            if value is not None and w > 0:
                total += w * value
                weight += w
        return round(100 * total / weight, 2) if weight else None


DEFAULT_WEIGHTS = Weights(dict.fromkeys(METRICS, 1.0))


def parse_weights(doc: Mapping[str, Any]) -> Weights:
    """Validated weights from a decoded document: a [weights] table of metric = number >= 0."""
    for key in doc:
        if key != "weights":
            raise WeightsError(f"unknown section {key!r}; expected [weights]", (key,))
    table = doc.get("weights")
    if not isinstance(table, Mapping) or not table:
        raise WeightsError("expected a [weights] table naming at least one metric", ("weights",))
    weights: dict[str, float] = {}
    for name, value in table.items():
        if name not in METRICS:
            raise WeightsError(f"unknown metric {name!r}; expected one of {', '.join(METRICS)}",
                               ("weights", name))
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise WeightsError(f"expected a number from 0 to 100; got {value!r}",
                               ("weights", name))
        weights[name] = float(value)
    if not any(weights.values()):
        raise WeightsError("every weight is 0; at least one must count", ("weights",))
    return Weights(weights)


def _moment(text: Any) -> datetime | None:
    """An ISO 8601 time with its offset (as events carry them); None for none or a bad one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@lru_cache(maxsize=8192)
def _day_of(prefix: str, offset: timezone) -> str:
    """The local day of a UTC time given to the hour ('2026-11-30T17') or, for an offset with
    minutes, to the minute ('2026-11-30T17:30')."""
    moment = datetime.fromisoformat(prefix + (":00:00+00:00" if len(prefix) == 13 else
                                              ":00+00:00"))
    return moment.astimezone(offset).date().isoformat()


def local_day(at: str, offset: timezone = DEFAULT_OFFSET) -> str:
    """An event's local day: `at` is eventsourcing's UTC ISO time."""
    text = at if at.endswith("+00:00") and len(at) > 16 else utc_text(at) or ""
    # The local day is a function of the UTC hour (of the minute, for an offset like +05:30):
    # cacheable, whatever the seconds.
    whole_hours = (offset.utcoffset(None) or timedelta()) % timedelta(hours=1) == timedelta()
    return _day_of(text[:13] if whole_hours else text[:16], offset)


class OpenCase(NamedTuple):
    """What the fold keeps of an open case: who answers for it, and its current step's due.
    A tuple of atoms, which the garbage collector stops tracking: the fold keeps one per open
    case."""

    township: str | None
    district: str | None
    department: str | None
    due: datetime | None

    @property
    def area(self) -> tuple[str | None, str | None]:
        return (self.township, self.district)


class Assessment:
    """The fold's state: counts per unit per day, and the open cases and orders it follows."""

    def __init__(self, offset: timezone = DEFAULT_OFFSET) -> None:
        self.offset = offset
        self.days: dict[str, dict[str, array[int]]] = {}  # unit -> day -> counters
        self.cases: dict[str, OpenCase] = {}  # the open incidents, by id
        self.orders: dict[str, str] = {}  # open order id -> its addressee
        self.position = 0
        # UTC hour (or minute) -> local day, for the events' times (bounded: cleared when big)
        self._whole_hours = (offset.utcoffset(None) or timedelta()) % timedelta(hours=1) == \
            timedelta()
        self._day_cache: dict[str, str] = {}

    def day_of(self, at: str) -> str:
        """An event's local day (what `local_day` gives), cached by its UTC hour or minute."""
        if not at.endswith("+00:00"):
            return local_day(at, self.offset)
        prefix = at[:13] if self._whole_hours else at[:16]
        day = self._day_cache.get(prefix)
        if day is None:
            if len(self._day_cache) > 100_000:
                self._day_cache.clear()
            day = self._day_cache[prefix] = local_day(at, self.offset)
        return day

    def _add(self, units: Iterable[str | None], day: str, *bumps: tuple[int, int]) -> None:
        """Add each (counter index, amount) to every unit's row of the day."""
        for unit in units:
            if unit:
                cells = self.days.get(unit)
                if cells is None:
                    cells = self.days[unit] = {}
                row = cells.get(day)
                if row is None:
                    # An array, not a list: the garbage collector need not walk it (the fold
                    # holds hundreds of thousands of them over years of history).
                    row = cells[day] = array("q", EMPTY)
                for index, n in bumps:
                    row[index] += n

    def apply(self, event: Envelope) -> None:
        """Fold one event (an event at or below the position was applied already)."""
        if event.notification_id <= self.position:
            return
        self.position = event.notification_id
        if event.aggregate == "Incident":
            self._incident(event)
        elif event.aggregate == "SupervisionOrder":
            self._order(event)

    def _incident(self, event: Envelope) -> None:
        name = event.name
        data = event.data
        oid = event.originator_id
        day = self.day_of(event.at)
        if name == "Reported":
            centers = event.centers
            case = OpenCase(centers[0] if centers else None,
                            centers[1] if len(centers) > 2 else None, None,
                            _moment(data.get("step_due")))
            self.cases[oid] = case
            self._add(case.area, day, ONE["intake"])
            return
        known = self.cases.get(oid)
        if known is None:
            return
        case = known
        area = (case[0], case[1])
        with_dept = (case[0], case[1], case[2])
        step = STEP_EVENTS.get(name)
        if step is not None and case.due is not None:
            units = with_dept if step in DEPARTMENT_STEPS else area
            at = _moment(event.at)
            self._add(units, day, ONE[f"{step}_timed"],
                      ONE[f"{step}_on_time"] if at is not None and at <= case.due
                      else ONE["late"])
        if name in ("Dispatched", "Transferred", "ReopenedAutomatically"):
            assignee = data.get("assignee")
            if isinstance(assignee, dict) and assignee.get("kind") == "department":
                case = OpenCase(case[0], case[1], f"{DEPARTMENT}{assignee.get('id')}", case[3])
            elif name != "ReopenedAutomatically":
                case = OpenCase(case[0], case[1], None, case[3])
            self.cases[oid] = case
            with_dept = (case[0], case[1], case[2])
        if name == "Resolved":
            self._add(with_dept, day, ONE["resolved"])
        elif name == "ReturnVisited":
            satisfaction = data.get("satisfaction")
            if isinstance(satisfaction, int):
                self._add(with_dept, day, (C["satisfaction_sum"], satisfaction),
                          ONE["satisfaction_count"])
        elif name in ("Reopened", "ReopenedAutomatically"):
            self._add(with_dept, day, ONE["reopens"])
        elif name == "Escalated" and data.get("step") is not None:
            self._add(with_dept if data.get("step") in DEPARTMENT_STEPS else area, day,
                      ONE["escalations"])
        elif name == "Closed" and data.get("unreachable") and case.due is not None:
            # Closed unreachable: the return visit's step ends here.
            at = _moment(event.at)
            self._add(area, day, ONE["visit_timed"],
                      ONE["visit_on_time"] if at is not None and at <= case.due else ONE["late"])
        if name in TERMINAL_EVENTS:
            del self.cases[oid]
        elif "step_due" in data or name == "ReturnVisited":
            self.cases[oid] = OpenCase(case[0], case[1], case[2], _moment(data.get("step_due")))

    def _order(self, event: Envelope) -> None:
        oid = event.originator_id
        day = self.day_of(event.at)
        if event.name == "Issued":
            addressee = str(event.data.get("addressee"))
            self.orders[oid] = addressee
            self._add((addressee,), day, ONE["orders_received"])
            return
        to = self.orders.get(oid)
        if to is None:
            return
        if event.name == "Overdue":
            self._add((to,), day, ONE["orders_overdue"])
        elif event.name == "Fulfilled":
            if event.data.get("on_time"):
                self._add((to,), day, ONE["orders_met"])
            del self.orders[oid]

    # -- queries ------------------------------------------------------------------------------

    def units(self) -> list[str]:
        return sorted(self.days)

    def totals(self, unit: str, first: date, last: date) -> list[int]:
        """The unit's counters summed over the days from `first` to `last`, inclusive."""
        cells = self.days.get(unit, {})
        total = [0] * len(COUNTERS)
        day = first
        while day <= last:
            row = cells.get(day.isoformat())
            if row is not None:
                for i, n in enumerate(row):
                    total[i] += n
            day += timedelta(days=1)
        return total


def period_start(day: date, period: str) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def next_start(start: date, period: str) -> date:
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(counts: list[int], weights: Weights) -> dict[str, Any]:
    """The published figures of summed counters: counts, rates, mean satisfaction, score."""
    n = dict(zip(COUNTERS, counts, strict=True))
    out: dict[str, Any] = {"intake": n["intake"]}
    for step in ("accept", "dispatch", "acknowledge", "resolve", "visit"):
        out[f"{step}_on_time"] = _rate(n[f"{step}_on_time"], n[f"{step}_timed"])
        out[f"{step}_timed"] = n[f"{step}_timed"]
    out["late"] = n["late"]
    out["escalations"] = n["escalations"]
    out["orders_received"] = n["orders_received"]
    out["orders_met_on_time"] = _rate(n["orders_met"], n["orders_received"])
    out["orders_overdue"] = n["orders_overdue"]
    out["resolved"] = n["resolved"]
    reopen_rate = _rate(n["reopens"], n["resolved"])
    out["reopens"] = n["reopens"]
    out["reopen_rate"] = reopen_rate
    mean = (round(n["satisfaction_sum"] / n["satisfaction_count"], 4)
            if n["satisfaction_count"] else None)
    out["satisfaction"] = mean
    out["score"] = weights.score({
        **{m: out[m] for m in METRICS[:6]},
        "no_reopen": None if reopen_rate is None else max(0.0, 1 - reopen_rate),
        "satisfaction": None if mean is None else (mean - 1) / 4,
    })
    return out


# The columns of a row, in order (the CSV's header).
COLUMNS = ("unit", "kind", "period", "start", "intake", "accept_on_time", "accept_timed",
           "dispatch_on_time", "dispatch_timed", "acknowledge_on_time", "acknowledge_timed",
           "resolve_on_time", "resolve_timed", "visit_on_time", "visit_timed", "late",
           "escalations", "orders_received", "orders_met_on_time", "orders_overdue", "resolved",
           "reopens", "reopen_rate", "satisfaction", "score")


def rows(assessment: Assessment, units: Iterable[tuple[str, str]], period: str, first: date,
         last: date, weights: Weights) -> list[dict[str, Any]]:
    """One row per (unit, period) from the period holding `first` to the one holding `last`;
    `units` are (unit id, kind) pairs."""
    out = []
    for unit, kind in units:
        start = period_start(first, period)
        while start <= last:
            end = next_start(start, period) - timedelta(days=1)
            counts = assessment.totals(unit, start, end)
            row = {"unit": unit, "kind": kind, "period": period, "start": start.isoformat(),
                   **figures(counts, weights)}
            out.append({column: row[column] for column in COLUMNS})
            start = next_start(start, period)
    return out
