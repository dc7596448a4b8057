"""Recording what auditors and admins do, as events in the (sealed) event store."""

from __future__ import annotations

import getpass
from typing import Any

from domain.application import IncidentService
from domain.audit_trail import AuditRecord
from domain.incident import Actor


def audit_recorder(service: IncidentService) -> Any:
    """A `Record` hook: appends one AuditRecord per action."""

    def record(actor: Actor, action: str, target: str, details: dict[str, Any]) -> None:
        service.save(AuditRecord(actor=actor, action=action, target=target, details=details))

    return record


def cli_actor() -> Actor:
    """Who runs a local administrative command: the operating-system user, as admin."""
    try:
        user = getpass.getuser()
    except Exception:  # no user database entry (containers)
        user = "unknown"
    return {"user": f"cli:{user}", "role": "admin", "center": None}


def record_cli(service: IncidentService, action: str, **details: Any) -> None:
    audit_recorder(service)(cli_actor(), action, "cli", details)
