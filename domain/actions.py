"""The loop actions a user can ask for on an incident: the one table of them.

Every other list is derived from this one: the application's dispatch (domain/application.py),
the access policy's permissions (domain/access.py), and the HTTP request bodies, routes and
OpenAPI paths (command_center/schemas.py, command_center/openapi.py). Which status allows
which action stays with the aggregate (`ALLOWED` in domain/incident.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from domain.incident import Incident, public_name


@dataclass(frozen=True, slots=True)
class LoopAction:
    """One action of the closed loop: its domain name, the command it runs, who does it."""

    name: str  # as the aggregate names it (`ALLOWED`): "mark_duplicate"
    command: Callable[..., None]  # the Incident method, called with actor= and the body's fields
    # Done by the assignee itself (a department or a grid worker, on a case dispatched to it);
    # officers may do every action, within their jurisdiction.
    handler: bool = False

    @property
    def path(self) -> str:
        """The name as the HTTP path and the permission spell it: "mark-duplicate"."""
        return public_name(self.name)


LOOP_ACTIONS: tuple[LoopAction, ...] = (
    # step 1: unified intake
    LoopAction("accept", Incident.accept),
    LoopAction("reject", Incident.reject),
    LoopAction("mark_duplicate", Incident.mark_duplicate),
    # step 2: triage and dispatch
    LoopAction("dispatch", Incident.dispatch),
    LoopAction("return", Incident.return_, handler=True),
    LoopAction("transfer", Incident.transfer),
    # step 3: coordinated handling
    LoopAction("acknowledge", Incident.acknowledge, handler=True),
    LoopAction("progress", Incident.progress, handler=True),
    LoopAction("resolve", Incident.resolve, handler=True),
    # step 5: closure and return visit
    LoopAction("return_visit", Incident.return_visit),
    LoopAction("reopen", Incident.reopen),
    LoopAction("close", Incident.close),
    # step 4: tracking and supervision, at any time while the case is worked
    LoopAction("supervise", Incident.supervise),
    LoopAction("escalate", Incident.escalate),
    # step 5 again (issue #14): a return visit that did not reach the resident
    LoopAction("visit_attempt", Incident.visit_attempt),
)

BY_PATH: dict[str, LoopAction] = {action.path: action for action in LOOP_ACTIONS}
PATHS: tuple[str, ...] = tuple(BY_PATH)
