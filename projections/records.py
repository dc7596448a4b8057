"""A view as records of bounded size, for stores that keep it by key (faust table, Redis).

A view's map sections (the queue, grids, alerts, storms, storm windows) are stored one
record per entry (`"<section>/<entry>"`); every other section is one record (`"<section>"`).
No record then holds more than one case, one alert, one storm or one bounded list (`recent`),
whatever the number of open cases, and a batch rewrites only the records its deltas touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from projections.patch import Change, View

SPLIT = frozenset({"queue", "grids", "alerts", "storms", "storm_windows"})
QUEUE = "queue"


def record_name(path: list[str]) -> str:
    """The record a change at `path` lands in."""
    section = path[0]
    if section in SPLIT:
        if len(path) < 2:
            raise ValueError(f"a change to {section!r} must name one entry (the section is "
                             f"stored entry by entry); got path {path!r}")
        return f"{section}/{path[1]}"
    return section


def touched(changes: Iterable[Change]) -> set[str]:
    """The records a delta's changes land in."""
    return {record_name(change["path"]) for change in changes}


def record_value(view: View, name: str) -> Any:
    """A record's value in a view; None when the view does not hold it (a deleted entry)."""
    section, _, entry = name.partition("/")
    if not entry:
        return view.get(section)
    return (view.get(section) or {}).get(entry)


def view_records(view: View) -> dict[str, Any]:
    """Every record of a view."""
    records: dict[str, Any] = {}
    for section, value in view.items():
        if section in SPLIT:
            for entry, item in value.items():
                records[f"{section}/{entry}"] = item
        else:
            records[section] = value
    return records


def view_from_records(base: View, records: Mapping[str, Any]) -> View:
    """`base` (an empty view, changed in place) with the records laid over it."""
    for name, value in records.items():
        section, _, entry = name.partition("/")
        if entry:
            base.setdefault(section, {})[entry] = value
        else:
            base[section] = value
    return base
