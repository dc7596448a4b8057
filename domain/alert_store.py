"""The port alert ingest stores through; its adapters live in infra/ingest/.

`AlertService` locates a batch and hands it to an `AlertStore`, which runs the domain's
decision (`domain/alert_decision.py`) inside its own transaction and commits what it decided:
a batch must see its own alerts and the ones stored just before it, so deciding and committing
happen together, in whichever process holds the store.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from domain.camera_alert import CameraAlert, Observation
from domain.incident import Actor

Located = list[tuple[str, list[str]]]  # (grid, centers) of each observation of a batch


@dataclass
class Outcome:
    """What ingest did with one observation."""

    alert: str
    status: str  # created | updated | ended | duplicate
    rules: list[str] = field(default_factory=list)
    incident: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"alert": self.alert, "status": self.status}
        if self.rules:
            data["rules"] = self.rules
        if self.incident:
            data["incident"] = self.incident
        return data


@dataclass(slots=True)
class NewAlert:
    """A decided Raised event that was not built: a new alert no rule touched.

    Building the event object costs more than storing it; the store encodes these fields
    straight into the stored form the event would have had (the same bytes)."""

    alert_id: UUID
    alert_text: str  # str(alert_id), made once
    fields: dict[str, Any]  # CameraAlert.raised_fields
    timestamp: datetime


class IngestUnavailable(Exception):
    """The store could not take a batch now: nothing of it was stored, and the feed may send it
    again after `retry_after` seconds (ingest is idempotent)."""

    def __init__(self, detail: str, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class StoredAlerts(Protocol):
    """What the decision and the officers' commands read back from the event store."""

    def existing(self, ids: Collection[UUID]) -> set[UUID]:
        """The ones among `ids` already stored (one query for a whole batch)."""
        ...

    def load(self, alert_id: UUID) -> CameraAlert:
        """A stored alert (one that `existing` found)."""
        ...

    def raised_from(self, position: int, limit: int) -> list[tuple[int, Any]]:
        """(notification id, Raised event) of alerts raised at `position` or later, in order."""
        ...


class AlertStore(Protocol):
    """Stores located batches, one transaction each."""

    def ingest(self, feed: str, observations: Sequence[Observation], located: Located,
               actor: Actor) -> list[Outcome]:
        """Decide and commit one located batch; one outcome per observation, in order.

        Raises the decision's DomainError (nothing stored), or IngestUnavailable."""
        ...

    def exclusive(self) -> AbstractContextManager[object]:
        """Held while an officer's command changes alerts: no other command, and no batch this
        process stores, changes them meanwhile."""
        ...
