"""The actions a user may take on an incident now: `allowed_actions` of the incident's HTTP answers.

Derived, never restated: the statuses' actions come from the aggregate (`Incident.allowed_actions`,
over `ALLOWED` in domain/incident.py), the permissions from the one table of loop actions
(domain/actions.py) through the access policy (domain/access.py), asked exactly as the action's
route asks it. An action listed here is one the server accepts from this user (given a valid body);
one left out it refuses.
"""

from __future__ import annotations

from typing import Any

from command_center.problems import Problem
from command_center.types import Services
from domain import access
from domain.incident import Actor, Incident, public_name


def allowed_for(svc: Services, actor: Actor, incident: Incident) -> list[str]:
    """The incident's allowed actions (public names) that `actor` may take."""
    allowed: list[str] = []
    for action in incident.allowed_actions():
        name = public_name(action)
        try:
            svc.authorize(actor, access.action_permission(name), incident.centers,
                          assignee=incident.assignee)
        except Problem as exc:
            if exc.status != 403:
                raise
            continue
        allowed.append(name)
    return allowed


def incident_for(svc: Services, actor: Actor, incident: Incident) -> dict[str, Any]:
    """The incident as the API shows it to `actor`: `allowed_actions` are theirs."""
    data = incident.as_dict()
    data["allowed_actions"] = allowed_for(svc, actor, incident)
    clock = svc.incidents.step_clock()
    if clock is not None and ("dispatch" in data["allowed_actions"]
                              or "transfer" in data["allowed_actions"]):
        # What the SLA policy gives a dispatch made now (the form's prefill): a later `due`
        # needs `due_reason`.
        data["policy_resolve_due"] = clock.due(incident.category, incident.severity, "resolve")
    return data
