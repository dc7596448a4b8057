"""The specified access matrix, written independently of domain/access.py.

`relation` is where the data lies relative to the actor's home center: "own",
"child" (beneath it), "parent" (above it) or "sibling" (anywhere else).
Permission groups: report, read, view, subscribe, audit, handler_action
(acknowledge, progress, resolve, return), other_action (every other loop action).
"""

from __future__ import annotations

OFFICERS = ("city_officer", "district_officer", "township_officer")
RELATIONS = ("own", "child", "parent", "sibling")
GROUPS = ("report", "read", "view", "subscribe", "audit", "handler_action", "other_action")
HANDLER_ACTIONS = ("acknowledge", "progress", "resolve", "return")
OTHER_ACTIONS = ("accept", "reject", "mark-duplicate", "dispatch", "transfer", "return-visit",
                 "reopen", "close")


def group_of(action: str) -> str:
    return "handler_action" if action in HANDLER_ACTIONS else "other_action"


def expected(role: str, group: str, relation: str, assigned: bool = False) -> bool:
    """Allowed? `assigned`: the incident is dispatched to this actor (or its department)."""
    down = relation in ("own", "child")
    if role == "admin":
        return True
    if role == "auditor":
        return group in ("read", "view", "subscribe", "audit")
    if group == "audit":
        return False
    if role in OFFICERS:
        return down
    if role == "feed":
        return group == "report" and down
    if role == "grid_worker":
        if group in ("report", "read"):
            return down
        return group == "handler_action" and down and assigned
    if role == "department":
        return group in ("read", "handler_action") and down and assigned
    return False
