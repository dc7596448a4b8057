"""Population counts in a center's view: a pure fold over Resident events.

A view gains `population` with its first resident event:
``{"week": "2026-W48", "units": {unit id: {"total", "permanent", "floating", "rental",
"arrivals", "departures"}}}``. A township's view counts itself, its communities and its grids;
a district's and the city's count themselves and their children. So a view's size is the
tree's, never the population's. `arrivals` and `departures` are this week's (the ISO week of the
newest resident event, by its stored time); the first event of a new week starts them at 0.

Resident events carry the grid's `units` (grid, community, township, district, city) and the
`centers` they show on; a move carries both the old and the new units. No personal data
enters a view: only counts.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from projections.envelope import Envelope
from projections.patch import Change, View, set_

KINDS = ("permanent", "floating", "rental")
FIELDS = ("total", *KINDS, "arrivals", "departures")


def iso_week(at: str) -> str:
    """'2026-11-30T02:31:07+00:00' -> '2026-W49' (the week of the time's own date)."""
    return _week_of_day(at[:10])


@lru_cache(maxsize=4096)  # one parse per day, not per event and center
def _week_of_day(day: str) -> str:
    try:
        year, week, _ = date.fromisoformat(day).isocalendar()
    except ValueError:
        return ""
    return f"{year}-W{week:02d}"


def kept_units(units: list[str], center: str) -> list[str]:
    """The units of a chain a center's view counts: a township its own and everything below,
    a district or the city its own and its children's."""
    if center not in units:
        return []
    index = units.index(center)
    depth = 2 if index == 2 else 1
    return units[max(0, index - depth): index + 1]


class _Counts:
    """Counter changes against a view, each key set once with its final value."""

    def __init__(self, view: View) -> None:
        self.units: dict[str, dict[str, int]] = view.get("population", {}).get("units", {})
        self.new: dict[tuple[str, str], int] = {}

    def add(self, unit: str, field: str, delta: int) -> None:
        key = (unit, field)
        current = self.new.get(key, self.units.get(unit, {}).get(field, 0))
        self.new[key] = current + delta

    def changes(self) -> list[Change]:
        return [set_(["population", "units", unit, field], value)
                for (unit, field), value in self.new.items()]


def _center_of(view: View) -> str:
    center = view.get("center")
    return center if isinstance(center, str) else ""


def population_changes(view: View, event: Envelope) -> list[Change]:
    """What a Resident event changes in a center's view."""
    data: dict[str, Any] = event.data
    center = _center_of(view)
    name = event.name
    week = iso_week(event.at)
    population = view.get("population") or {}
    changes: list[Change] = []
    current_week = population.get("week", "")
    counts = _Counts(view)
    if week > current_week:
        changes.append(set_(["population", "week"], week))
        for unit, values in counts.units.items():
            for field in ("arrivals", "departures"):
                if values.get(field):
                    counts.add(unit, field, -values[field])
    this_week = week >= current_week
    if name in ("Registered", "Reregistered"):
        for unit in kept_units(data.get("units", []), center):
            counts.add(unit, "total", 1)
            counts.add(unit, str(data.get("kind")), 1)
            if this_week:
                counts.add(unit, "arrivals", 1)
    elif name == "Deregistered":
        for unit in kept_units(data.get("units", []), center):
            counts.add(unit, "total", -1)
            counts.add(unit, str(data.get("kind")), -1)
            if this_week:
                counts.add(unit, "departures", 1)
    elif name == "Moved":
        old = kept_units(data.get("from_units", []), center)
        new = kept_units(data.get("units", []), center)
        kind = str(data.get("kind"))
        for unit in old:
            if unit not in new:
                counts.add(unit, "total", -1)
                counts.add(unit, kind, -1)
                if this_week:
                    counts.add(unit, "departures", 1)
        for unit in new:
            if unit not in old:
                counts.add(unit, "total", 1)
                counts.add(unit, kind, 1)
                if this_week:
                    counts.add(unit, "arrivals", 1)
    elif name == "Corrected" and data.get("old_kind") != data.get("kind"):
        for unit in kept_units(data.get("units", []), center):
            counts.add(unit, str(data.get("old_kind")), -1)
            counts.add(unit, str(data.get("kind")), 1)
    return changes + counts.changes()


def population_of(view: View, unit: str) -> dict[str, Any]:
    """One unit's figures from a view (zeros for a unit with no one registered)."""
    population = view.get("population") or {}
    values = population.get("units", {}).get(unit, {})
    return {"week": population.get("week", ""), **{f: int(values.get(f, 0)) for f in FIELDS}}
