"""The specified access matrix, written independently of domain/access.py.

`relation` is where the data lies relative to the actor's home center: "own",
"child" (beneath it), "parent" (above it) or "sibling" (anywhere else).
Permission groups: report, read, view, subscribe, audit, handler_action
(acknowledge, progress, resolve, return), other_action (every other loop action).
"""

from __future__ import annotations

from typing import Any

OFFICERS = ("city_officer", "district_officer", "township_officer")
RELATIONS = ("own", "child", "parent", "sibling")
GROUPS = ("report", "read", "view", "subscribe", "audit", "handler_action", "other_action",
          "alert_ingest", "alert_read", "alert_action", "tree")
HANDLER_ACTIONS = ("acknowledge", "progress", "resolve", "return")
OTHER_ACTIONS = ("accept", "reject", "mark-duplicate", "dispatch", "transfer", "return-visit",
                 "reopen", "close", "supervise", "escalate", "visit-attempt")


def group_of(action: str) -> str:
    return "handler_action" if action in HANDLER_ACTIONS else "other_action"


def expected(role: str, group: str, relation: str, assigned: bool = False) -> bool:
    """Allowed? `assigned`: the incident is dispatched to this actor (or its department)."""
    down = relation in ("own", "child")
    if role == "admin" or group == "tree":
        return True
    if role == "auditor":
        return group in ("read", "view", "subscribe", "audit", "alert_read")
    if group == "audit":
        return False
    if role in OFFICERS:
        return down and group != "alert_ingest"
    if role == "feed":
        return group in ("report", "alert_ingest") and down
    if role == "grid_worker":
        if group in ("report", "read"):
            return down
        return group == "handler_action" and down and assigned
    if role == "department":
        return group in ("read", "handler_action") and down and assigned
    return False


# A small tree with every relation: C -> D1 -> (T1, T2), C -> D2 -> T3; a community and a grid
# under each township.
UNITS = [("C", "city", None), ("D1", "district", "C"), ("D2", "district", "C"),
         ("T1", "township", "D1"), ("T2", "township", "D1"), ("T3", "township", "D2"),
         ("M1", "community", "T1"), ("M2", "community", "T2"), ("M3", "community", "T3"),
         ("G1", "grid", "M1"), ("G2", "grid", "M2"), ("G3", "grid", "M3")]
GRID_OF = {"T1": "G1", "T2": "G2", "T3": "G3"}


def small_tree() -> dict[str, Any]:
    """The small tree as GeoJSON (grids are unit squares side by side)."""

    def square(i: int) -> dict[str, Any]:
        x = float(i)
        return {"type": "Polygon",
                "coordinates": [[[x, 0.0], [x + 1, 0.0], [x + 1, 1.0], [x, 1.0], [x, 0.0]]]}

    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": square(i) if level == "grid" else None,
         "properties": {"id": uid, "name": uid, "name_en": uid, "level": level, "parent": parent}}
        for i, (uid, level, parent) in enumerate(UNITS)
    ]}
