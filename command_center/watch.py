"""Which centers a user may watch, and the part of the jurisdiction tree `GET /api/centers`
shows them.

A node of the tree is kept when the user may watch it, when it is on the way down to one they
may watch (its ancestors, marked not watchable), or when it lies beneath one (its communities
and grids, whose names the console shows). A user who may watch no center (a department, a grid
worker) gets the branch of their home center, or the whole tree when they have none. Every node
carries `watchable`; the root also carries `home`, the user's own center (null when none), `role`,
and `assignee`: the `kind:id` naming the user as an assignee (a department, a grid worker; else null).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from command_center.problems import Problem
from command_center.types import Services
from domain import access
from domain.incident import Actor


def watcher(svc: Services, actor: Actor) -> Callable[[str], bool]:
    """center id -> whether `actor` may watch that center's console (the subscription's rule)."""

    def watches(center: str) -> bool:
        try:
            svc.authorize(actor, access.SUBSCRIBE, svc.jurisdiction.centers_for(center))
        except Problem as exc:
            if exc.status != 403:
                raise
            return False
        return True

    return watches


def home_center(svc: Services, actor: Actor) -> str | None:
    """The nearest center at or above the actor's own unit (a grid worker's township)."""
    center = actor.get("center")
    if not center or center not in svc.jurisdiction:
        return None
    chain = svc.jurisdiction.centers_for(center)
    return chain[0] if chain else None


def watchable_tree(svc: Services, actor: Actor) -> dict[str, Any]:
    """The tree as `actor` may see it (see the module's docstring)."""
    jurisdiction = svc.jurisdiction
    watches = watcher(svc, actor)
    watched = {u.id for u in jurisdiction.centers() if watches(u.id)}
    home = home_center(svc, actor)
    tops = watched or ({home} if home else {jurisdiction.root.id})
    keep: set[str] = set()
    for top in tops:
        keep.add(top)
        keep.update(u.id for u in jurisdiction.ancestors(top))
    tree = jurisdiction.tree()

    def prune(node: dict[str, Any], inside: bool) -> dict[str, Any] | None:
        inside = inside or node["id"] in tops
        if not inside and node["id"] not in keep:
            return None
        children = [c for c in (prune(child, inside) for child in node["children"]) if c]
        return {**node, "watchable": node["id"] in watched, "children": children}

    root = prune(tree, False) or {**tree, "children": []}
    root["home"] = home
    root["role"] = actor.get("role")
    root["assignee"] = own_assignee(actor)
    return root


def own_assignee(actor: Actor) -> str | None:
    """The `kind:id` naming the actor as an assignee: a department's, a grid worker's; else None."""
    if actor.get("role") == "department" and actor.get("department"):
        return f"department:{actor.get('department')}"
    if actor.get("role") == "grid_worker":
        return f"grid_worker:{actor['user']}"
    return None
