"""Who may read and change the registry, and who may see personal data. Pure policy.

Same shape as domain/access.py (and built on its AccessPolicy: home centers, roles): the data's
jurisdiction is a list of center ids (a grid's centers, a party's served centers), an actor is
in scope when its home center is one of them.

- `registry.read` (roster, population, residents masked): officers, grid workers and
  departments in scope, auditors, admins.
- `registry.manage` (parties, grid workers): officers in scope, admins.
- `resident.write` (register, move, deregister, correct): township officers and grid workers in
  scope, admins.
- `registry.personal` (unmasked ID numbers and phones): township officers for their own
  township, admins. Nobody else, auditors included: the audit export keeps the events whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.access import OFFICER_LEVEL, AccessPolicy, Decision, home_problem
from domain.incident import Actor

REGISTRY_READ = "registry.read"
REGISTRY_MANAGE = "registry.manage"
RESIDENT_WRITE = "resident.write"
PERSONAL = "registry.personal"
PERMISSIONS = (REGISTRY_READ, REGISTRY_MANAGE, RESIDENT_WRITE, PERSONAL)

_ALLOW = Decision(True, "allowed")


def decide(policy: AccessPolicy, actor: Actor, permission: str,
           centers: Sequence[str]) -> Decision:
    role = actor.get("role", "")
    if permission not in PERMISSIONS:
        return Decision(False, f"unknown permission {permission!r}")
    misplaced = home_problem(role, actor.get("center"), policy.jurisdiction)
    if misplaced is not None:
        return Decision(False, misplaced)
    if role == "admin":
        return _ALLOW
    if role == "auditor":
        if permission == REGISTRY_READ:
            return _ALLOW
        return Decision(False, f"an auditor reads the registry masked; {permission} is not "
                        "allowed (the audit export keeps the events whole)")
    home = policy.home(actor)
    where = f"the data belongs to {', '.join(centers) or 'no center'}"
    if home is None or home not in centers:
        if role == "department" and home is None and permission == REGISTRY_READ:
            return _ALLOW  # a city-wide department reads the roster to know its peers
        return Decision(False, f"{where}, outside the {role}'s jurisdiction {home}")
    if permission == REGISTRY_READ:
        return _ALLOW
    if permission == REGISTRY_MANAGE:
        if role in OFFICER_LEVEL:
            return _ALLOW
        return Decision(False, f"a {role} may not manage the registry")
    if permission == RESIDENT_WRITE:
        if role in ("township_officer", "grid_worker"):
            return _ALLOW
        return Decision(False, f"residents are registered by grid workers and township "
                        f"officers, not a {role}")
    # PERSONAL
    if role == "township_officer" and home == actor.get("center"):
        return _ALLOW
    return Decision(False, f"a {role} sees ID numbers and phones masked")
