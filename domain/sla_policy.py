"""The SLA policy: how long each step of the loop may take, by category and severity.

A policy is a default row, rules by category × severity (either may be `*`), an optional
working-hours calendar, the time between the rungs of the escalation ladder and the return-visit
rule (how many unreachable attempts allow closing without a visit). Pure: `parse_policy` takes an
already-decoded document (infra/loaders/sla_policy.py reads the TOML and names the line of a
`PolicyError`); `StepClock` turns the caller's clock reading into a step's due time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

# The timed steps of the loop, in order: the time a case may wait for each.
STEPS: tuple[str, ...] = ("accept", "dispatch", "acknowledge", "resolve", "visit")
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# No step may be allowed more than this; it also bounds the working-hours walk.
MAX_DURATION = timedelta(days=366)

_PART = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class PolicyError(ValueError):
    """A policy document that breaks a rule. `where` names the place: a section, and for
    `[[rule]]` its index, then the key (what the loader turns into a line number)."""

    def __init__(self, message: str, where: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.where = where


def parse_duration(text: Any, where: tuple[str | int, ...]) -> timedelta:
    """'90m', '2h', '3d', '1d12h' -> a timedelta (positive, at most MAX_DURATION)."""
    if not isinstance(text, str) or not text or _PART.sub("", text) != "":
        raise PolicyError(f"expected a duration like '30m', '2h', '3d' or '1d12h'; got {text!r}",
                          where)
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(text))
    if seconds <= 0 or seconds > MAX_DURATION.total_seconds():
        raise PolicyError(f"expected a duration above 0 and at most 366d; got {text!r}", where)
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Calendar:
    """Working hours: the days and the daily window, in a fixed UTC offset."""

    offset: timezone
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    def add(self, moment: datetime, duration: timedelta) -> datetime:
        """`moment` plus `duration` of working time (time outside the windows does not count)."""
        local = moment.astimezone(self.offset)
        left = duration
        # Bounded: a window each working day, and at most 366 days of working time.
        for _ in range(8 * 366 * 2):
            day_start = datetime.combine(local.date(), self.start, self.offset)
            day_end = datetime.combine(local.date(), self.end, self.offset)
            if local.weekday() not in self.days or local >= day_end:
                local = datetime.combine(local.date() + timedelta(days=1), self.start, self.offset)
                continue
            local = max(local, day_start)
            if local + left <= day_end:
                return (local + left).astimezone(UTC)
            left -= day_end - local
            local = datetime.combine(local.date() + timedelta(days=1), self.start, self.offset)
        raise ValueError("working-hours calendar has no working time")  # parse forbids this


@dataclass(frozen=True, slots=True)
class Limits:
    """One row of the policy: the time allowed per step, and whether it counts working hours."""

    steps: Mapping[str, timedelta]
    working_hours: bool = False


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    default: Limits
    rules: Mapping[tuple[str, str], Limits] = field(default_factory=dict)
    calendar: Calendar | None = None
    escalate_every: timedelta = timedelta(hours=1)
    unreachable_attempts: int = 3
    attempt_gap: timedelta = timedelta(hours=1)

    def limits(self, category: str, severity: str) -> Limits:
        """The row for a case: exact, then category with any severity, then any category with
        the severity, then the default."""
        for key in ((category, severity), (category, "*"), ("*", severity)):
            found = self.rules.get(key)
            if found is not None:
                return found
        return self.default

    def due(self, category: str, severity: str, step: str, start: datetime) -> datetime:
        """When `step` of such a case, begun at `start`, is due."""
        row = self.limits(category, severity)
        allowed = row.steps[step]
        if row.working_hours and self.calendar is not None:
            return self.calendar.add(start, allowed)
        return start.astimezone(UTC) + allowed


@dataclass(frozen=True, slots=True)
class StepClock:
    """The policy and the clock's reading, handed to the aggregate's commands."""

    policy: SlaPolicy
    now: datetime

    def due(self, category: str, severity: str, step: str) -> str:
        return self.policy.due(category, severity, step, self.now).isoformat()


def _limits(doc: Any, where: tuple[str | int, ...], base: Limits | None) -> Limits:
    if not isinstance(doc, Mapping):
        raise PolicyError(f"expected a table; got {type(doc).__name__}", where)
    known = {*STEPS, "working_hours", "category", "severity"}
    for key in doc:
        if key not in known:
            raise PolicyError(f"unknown key {key!r}; expected one of {', '.join(sorted(known))}",
                              (*where, key))
    steps: dict[str, timedelta] = {}
    for step in STEPS:
        if step in doc:
            steps[step] = parse_duration(doc[step], (*where, step))
        elif base is not None:
            steps[step] = base.steps[step]
        else:
            raise PolicyError(f"the default row must give every step ({', '.join(STEPS)}); "
                              f"{step!r} is missing", where)
    working = doc.get("working_hours", base.working_hours if base else False)
    if not isinstance(working, bool):
        raise PolicyError(f"expected true or false; got {working!r}", (*where, "working_hours"))
    return Limits(steps, working)


def _clock_time(text: Any, where: tuple[str | int, ...]) -> time:
    if not isinstance(text, str) or not re.fullmatch(r"\d\d:\d\d", text):
        raise PolicyError(f"expected a time of day like '08:30'; got {text!r}", where)
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise PolicyError(f"expected a time of day like '08:30'; got {text!r}", where) from None


def _calendar(doc: Any) -> Calendar:
    where: tuple[str | int, ...] = ("calendar",)
    if not isinstance(doc, Mapping):
        raise PolicyError("expected a table", where)
    offset_text = doc.get("utc_offset", "+08:00")
    match = re.fullmatch(r"([+-])(\d\d):(\d\d)", str(offset_text))
    if match is None or int(match[2]) > 14 or int(match[3]) > 59:
        raise PolicyError(f"expected a UTC offset like '+08:00'; got {offset_text!r}",
                          (*where, "utc_offset"))
    sign = 1 if match[1] == "+" else -1
    offset = timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))
    days = doc.get("days", list(DAYS[:5]))
    if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
        raise PolicyError(f"expected a non-empty list of days from {', '.join(DAYS)}; got {days!r}",
                          (*where, "days"))
    start = _clock_time(doc.get("start", "08:30"), (*where, "start"))
    end = _clock_time(doc.get("end", "17:30"), (*where, "end"))
    if end <= start:
        raise PolicyError(f"the working day must end after it starts; got {start} to {end}",
                          (*where, "end"))
    return Calendar(offset, frozenset(DAYS.index(d) for d in days), start, end)


def parse_policy(doc: Mapping[str, Any]) -> SlaPolicy:
    """A validated policy from a decoded document; PolicyError names the rule and the key."""
    for key in doc:
        if key not in ("default", "rule", "calendar", "escalation", "visit"):
            raise PolicyError(f"unknown section {key!r}; expected default, rule, calendar, "
                              "escalation or visit", (key,))
    if "default" not in doc:
        raise PolicyError("a policy needs a [default] row giving every step", ("default",))
    default = _limits(doc["default"], ("default",), None)
    if "category" in doc["default"] or "severity" in doc["default"]:
        raise PolicyError("the default row applies to every case; it takes no category or "
                          "severity", ("default",))
    rules: dict[tuple[str, str], Limits] = {}
    raw_rules = doc.get("rule", [])
    if not isinstance(raw_rules, list):
        raise PolicyError("expected [[rule]] tables", ("rule",))
    for i, raw in enumerate(raw_rules):
        where: tuple[str | int, ...] = ("rule", i)
        if not isinstance(raw, Mapping):
            raise PolicyError("expected a table", where)
        row = (raw.get("category", "*"), raw.get("severity", "*"))
        if not all(isinstance(k, str) and k for k in row):
            raise PolicyError(f"category and severity must be non-empty strings; got {row!r}", where)
        if row in rules:
            raise PolicyError(f"a second rule for category {row[0]!r} and severity {row[1]!r}",
                              (*where, "category"))
        rules[(str(row[0]), str(row[1]))] = _limits(raw, where, default)
    calendar = _calendar(doc["calendar"]) if "calendar" in doc else None
    if calendar is None and any(r.working_hours for r in (default, *rules.values())):
        raise PolicyError("a row counts working hours, but the policy has no [calendar]",
                          ("calendar",))
    escalation = doc.get("escalation", {})
    every = parse_duration(escalation.get("every", "1h"), ("escalation", "every"))
    visit = doc.get("visit", {})
    attempts = visit.get("unreachable_attempts", 3)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 20:
        raise PolicyError(f"expected a whole number from 1 to 20; got {attempts!r}",
                          ("visit", "unreachable_attempts"))
    gap = parse_duration(visit.get("attempt_gap", "1h"), ("visit", "attempt_gap"))
    return SlaPolicy(default, rules, calendar, every, attempts, gap)


def describe(where: tuple[str | int, ...]) -> str:
    """A place in the document as a reader names it: `rule #2, key 'resolve'`."""
    parts: list[str] = []
    items = list(where)
    if items and items[0] == "rule" and len(items) > 1 and isinstance(items[1], int):
        parts.append(f"rule #{items[1] + 1}")
        items = items[2:]
    elif items:
        parts.append(f"[{items[0]}]")
        items = items[1:]
    parts += [f"key {item!r}" for item in items]
    return ", ".join(parts)
