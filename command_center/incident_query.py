"""The per-incident read model as the HTTP edge and the SLA watcher read it: a port.

Adapters: infra/store/view_store.py (embedded: beside the views, memory / SQLite /
PostgreSQL) and infra/store/incident_rows.py (distributed: PostgreSQL, written by the worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

MAX_LIMIT = 500
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class IncidentQuery:
    """Which incidents, in urgency order (urgency, id), after a keyset position."""

    center: str
    depth: int  # the center's place from the root (1: city, 2: district, 3: township)
    statuses: tuple[str, ...] = ()  # () : any status
    grid: str | None = None
    severity: str | None = None
    assignee: str | None = None  # "kind:id", as the records show it
    overdue: bool | None = None  # being worked with its due time before `now`, or not
    now: str = ""  # UTC text (projections.cases.utc_text)
    after: tuple[str, str] | None = None  # (urgency, id) of the last incident already listed
    categories: tuple[str, ...] = ()  # () : any category
    ids: tuple[str, ...] = ()  # () : any incident
    # reported at or after / before these times (UTC, as `datetime.isoformat()` writes them)
    reported_from: str | None = None
    reported_to: str | None = None
    limit: int = DEFAULT_LIMIT


class IncidentRows(Protocol):
    """The per-incident read model, as the HTTP edge and the SLA watcher read it."""

    def incidents(self, query: IncidentQuery) -> list[dict[str, Any]]:
        """Up to `query.limit` records (projections/cases.py) matching it, in urgency order."""

    def overdue(self, now: str) -> list[dict[str, Any]]:
        """Every open case being worked whose due time is before `now` (UTC text)."""

    def due(self, now: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` cases whose next escalation is due by `now` (UTC text), earliest
        first: the deadline index the SLA watcher reads."""


