"""What auditors and admins did: one small aggregate per recorded action.

Stored in the same event store as the incidents, so the sealer's hash chain
covers it: a deleted or edited record is as visible as a tampered incident.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.incident import Actor

# Roles whose every action is itself recorded.
RECORDED_ROLES: frozenset[str] = frozenset({"auditor", "admin"})


class AuditRecord(Aggregate):
    """One action of an auditor or admin (an HTTP request, a subscription, a CLI command)."""

    @event("Recorded")
    def __init__(self, *, actor: Actor, action: str, target: str, details: dict[str, Any]) -> None:
        self.actor = actor
        self.action = action
        self.target = target
        self.details = details
