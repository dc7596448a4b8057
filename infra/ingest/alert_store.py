"""The in-process `AlertStore`: decides a batch and commits it in one transaction (group commit)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager

from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.alert_decision import AlertDecider
from domain.alert_store import Located, NewAlert, Outcome
from domain.application import IncidentService
from domain.camera_alert import Observation
from domain.incident import Actor
from infra.ingest.raised_event import raised_stored_event
from infra.ingest.stored_alerts import RecorderAlerts


class RecorderAlertStore:
    """Stores batches into the incident service's event store, one at a time: SQLite has one
    writer anyway, and a batch must see the alerts of the batch before it."""

    def __init__(self, service: IncidentService, decider: AlertDecider, *,
                 keep_states: bool = True) -> None:
        self.service = service
        self.decider = decider
        self.stored = RecorderAlerts(service)
        # Whether new alerts carry their plain state for a reader in this process (the
        # projection runner); a writer process has none.
        self.keep_states = keep_states
        self._lock = threading.Lock()

    def exclusive(self) -> AbstractContextManager[object]:
        return self._lock

    def ingest(self, feed: str, observations: Sequence[Observation], located: Located,
               actor: Actor) -> list[Outcome]:
        with self._lock:
            try:
                return self._ingest(feed, observations, located, actor)
            except IntegrityError:
                # Another process stored one of these alerts meanwhile: look again, once.
                return self._ingest(feed, observations, located, actor)

    def _ingest(self, feed: str, observations: Sequence[Observation], located: Located,
                actor: Actor) -> list[Outcome]:
        events, outcomes = self.decider.decide(feed, observations, located, actor, self.stored)
        # Group commit: every new event of the batch in one transaction. This is what
        # Application.save(*aggregates) does (snapshots and the repository cache are off), minus
        # its per-object runtime-protocol checks and the Recording objects it builds for
        # `notify` (deprecated, unused here): together ~20% of the hot path.
        if events:
            mapper = self.service.mapper
            to_stored, keep = mapper.to_stored_event, self.keep_states
            stored: list[StoredEvent] = [
                raised_stored_event(mapper, e.alert_id, e.fields, e.timestamp, e.alert_text,
                                    keep_state=keep)
                if type(e) is NewAlert else to_stored(e)
                for e in events
            ]
            self.service.recorder.insert_events(stored)
        return outcomes
