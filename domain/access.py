"""Who may do what where: role x the actor's home center x the jurisdiction of the data.

Pure policy, no I/O. Deny by default: a permission is allowed only when a rule
below says so. The data's jurisdiction is the list of center ids it belongs to:
an incident's `centers` (its township, district and city), or, for a center's
view, that center and the centers above it. An actor is in scope when its home
center is one of them, so an officer reaches its own center and everything
beneath it, never a parent or a sibling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domain.actions import LOOP_ACTIONS
from domain.alert_service import ALERT_ACTIONS
from domain.incident import Actor
from domain.jurisdiction import Jurisdiction

ROLES: tuple[str, ...] = (
    "city_officer",
    "district_officer",
    "township_officer",
    "department",
    "grid_worker",
    "auditor",
    "feed",
    "admin",
)

# The level an officer's home center must be at.
OFFICER_LEVEL: dict[str, str] = {
    "city_officer": "city",
    "district_officer": "district",
    "township_officer": "township",
}

# Loop actions as the HTTP path names them, and those the assignee itself does with a case
# dispatched to it: both from the one table (domain/actions.py).
INCIDENT_ACTIONS: tuple[str, ...] = tuple(action.path for action in LOOP_ACTIONS)
HANDLER_ACTIONS: frozenset[str] = frozenset(action.path for action in LOOP_ACTIONS if action.handler)
# Where each role may be homed: the levels its token's center may name (None: no center). A grid
# worker's scope is the township above its home, so a home higher up would reach a whole district.
CENTER_LEVELS = ("city", "district", "township")
HOME_LEVELS: dict[str, tuple[str | None, ...]] = {
    **{role: (level,) for role, level in OFFICER_LEVEL.items()},
    "grid_worker": ("grid", "township"),
    "department": (None, *CENTER_LEVELS),
    "auditor": (None, *CENTER_LEVELS),
    "admin": (None, *CENTER_LEVELS),
    "feed": (None, *CENTER_LEVELS, "community", "grid"),
}


REPORT = "incident.report"
READ = "incident.read"
VIEW = "center.view"
SUBSCRIBE = "center.subscribe"
AUDIT = "audit.read"
TREE = "centers.list"
# Intake counters and recent dead letters (GET /api/ingest/stats): duty officers and admins.
INGEST_STATS = "ingest.stats"
# Camera and sensor alerts (the alerts branch names them so): a feed ingests; officers read and
# handle the alerts of their jurisdiction, with the actions AlertService.act runs.
ALERT_INGEST = "alerts:ingest"
ALERT_READ = "alerts:read"
ALERT_ACTION_PERMISSIONS: frozenset[str] = frozenset(f"alerts:{a}" for a in ALERT_ACTIONS)
# Acting in the name of a center (ordering supervision "by" it): its jurisdiction is that center's
# chain, so an officer acts for their own center or one beneath it, never above or beside.
ACT_AS = "center.act_as"


def action_permission(action: str) -> str:
    """The permission for a loop action, e.g. 'incident.accept'."""
    return f"incident.{action}"


ACTION_PERMISSIONS: frozenset[str] = frozenset(action_permission(a) for a in INCIDENT_ACTIONS)
HANDLER_PERMISSIONS: frozenset[str] = frozenset(action_permission(a) for a in HANDLER_ACTIONS)
READ_ONLY: frozenset[str] = frozenset({READ, VIEW, SUBSCRIBE, AUDIT, TREE, ALERT_READ})
PERMISSIONS: frozenset[str] = frozenset(
    {REPORT, ACT_AS, ALERT_INGEST, INGEST_STATS, *READ_ONLY, *ACTION_PERMISSIONS,
     *ALERT_ACTION_PERMISSIONS}
)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def _deny(reason: str) -> Decision:
    return Decision(False, reason)


ALLOW = Decision(True, "allowed")


def home_problem(role: str, center: str | None, jurisdiction: Jurisdiction) -> str | None:
    """Why `center` cannot be the home of a `role` (naming the rule); None when it can."""
    allowed = HOME_LEVELS.get(role)
    if allowed is None:
        return f"unknown role {role!r}; expected one of {', '.join(ROLES)}"
    levels = [level for level in allowed if level is not None]
    expected = (", ".join(levels[:-1]) + " or " if len(levels) > 1 else "") + levels[-1]
    if center is None:
        return None if None in allowed else f"a {role} needs a home center: a {expected}"
    unit = jurisdiction.get(center)
    if unit is None:
        return f"center {center!r} is not in the jurisdiction tree"
    if unit.level not in allowed:
        optional = " (or none)" if None in allowed else ""
        return f"a {role}'s home center must be a {expected}{optional}; {center} is a {unit.level}"
    return None


class AccessPolicy:
    """Decides one (actor, permission, data jurisdiction) question at a time."""

    def __init__(self, jurisdiction: Jurisdiction) -> None:
        self.jurisdiction = jurisdiction

    def home(self, actor: Actor) -> str | None:
        """The nearest center at or above the actor's center (a grid worker's township)."""
        center = actor.get("center")
        if not center or center not in self.jurisdiction:
            return None
        chain = self.jurisdiction.centers_for(center)
        return chain[0] if chain else None

    def view_centers(self, center: str) -> tuple[str, ...]:
        """The jurisdiction of a center's view: the center and every center above it."""
        if center not in self.jurisdiction or not self.jurisdiction.is_center(center):
            return (center,)
        return self.jurisdiction.centers_for(center)

    def decide(
        self,
        actor: Actor,
        permission: str,
        centers: Sequence[str],
        assignee: Mapping[str, object] | None = None,
    ) -> Decision:
        role = actor.get("role", "")
        if permission not in PERMISSIONS:
            return _deny(f"unknown permission {permission!r}")
        if role not in ROLES:
            return _deny(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        misplaced = home_problem(role, actor.get("center"), self.jurisdiction)
        if misplaced is not None:
            return _deny(misplaced)
        if role == "admin":
            return ALLOW
        if permission == TREE:
            return ALLOW
        if permission == INGEST_STATS and role not in OFFICER_LEVEL:
            return _deny(f"intake counters are for duty officers and admins, not a {role}")
        if role == "auditor":
            if permission in READ_ONLY:
                return ALLOW
            return _deny(f"an auditor is read-only; {permission} changes data")
        if permission == AUDIT:
            return _deny(f"the audit API is for auditors and admins, not a {role}")

        home = self.home(actor)
        center = actor.get("center")
        if center and home is None:
            return _deny(f"the actor's center {center!r} is not in the jurisdiction tree")
        in_scope = home is not None and home in centers
        where = f"the data belongs to {', '.join(centers) or 'no center'}"

        if role in OFFICER_LEVEL:
            level = OFFICER_LEVEL[role]
            if home is None or self.jurisdiction.unit(home).level != level or center != home:
                return _deny(f"a {role} needs a {level} center; got {center!r}")
            if permission == ALERT_INGEST:
                return _deny("alerts are ingested by feeds (API keys), not by officers")
            if permission == INGEST_STATS:
                return ALLOW  # the route shows each dead letter only within its jurisdiction
            if not in_scope:
                return _deny(f"{where}, outside the jurisdiction of {home}")
            return ALLOW

        if role == "feed":
            if permission not in (REPORT, ALERT_INGEST):
                return _deny(f"a feed may only report incidents and alerts, not {permission}")
            if permission == ALERT_INGEST and not centers:
                return ALLOW  # the gate before the alerts are located; each is placed later
            if home is not None and not in_scope:
                return _deny(f"{where}; this feed reports only within {home}")
            return ALLOW

        if role == "grid_worker":
            if home is None:
                return _deny("a grid worker needs a grid or township center")
            if not in_scope:
                return _deny(f"{where}, outside the grid worker's township {home}")
            if permission in (REPORT, READ):
                return ALLOW
            if permission in HANDLER_PERMISSIONS:
                mine = {"kind": "grid_worker", "id": actor.get("user")}
                if assignee is not None and dict(assignee) == mine:
                    return ALLOW
                return _deny("a grid worker acts only on cases dispatched to them")
            return _deny(f"a grid worker may not {permission}")

        if role == "department":
            department = actor.get("department")
            if not department:
                return _deny("a department handler's token names no department")
            if home is not None and not in_scope:
                return _deny(f"{where}, outside the department's jurisdiction {home}")
            if permission == READ or permission in HANDLER_PERMISSIONS:
                mine = {"kind": "department", "id": department}
                if assignee is not None and dict(assignee) == mine:
                    return ALLOW
                return _deny(f"department {department} sees only cases dispatched to it")
            return _deny(f"a department handler may not {permission}")

        return _deny(f"no rule allows a {role} to {permission}")  # pragma: no cover
