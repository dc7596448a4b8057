"""The event as every projection sees it, whatever carried it (SQLite, PostgreSQL, Kafka)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from domain.codec import plain


@dataclass(slots=True)
class Envelope:
    """One stored event with its notification id, decoded to plain JSON values.

    Treat it as read-only; it is not frozen only because a frozen dataclass builds itself
    through object.__setattr__, a measurable cost at tens of thousands of events a second."""

    notification_id: int
    originator_id: str
    originator_version: int
    type: str  # "<Aggregate>.<Event>", e.g. "Incident.Accepted"
    at: str  # ISO 8601 time the event was created
    data: dict[str, Any]

    @property
    def aggregate(self) -> str:
        return self.type.partition(".")[0]

    @property
    def name(self) -> str:
        return self.type.rsplit(".", 1)[-1]

    @property
    def centers(self) -> list[str]:
        centers = self.data.get("centers")
        return list(centers) if isinstance(centers, list) else []


def event_type(topic: str) -> str:
    """'domain.incident:Incident.Accepted' -> 'Incident.Accepted'."""
    return topic.rsplit(":", 1)[-1]


def from_stored(
    notification_id: int, originator_id: object, originator_version: int, topic: str, state: bytes
) -> Envelope:
    """Build an envelope from a stored event's fields."""
    raw = orjson.loads(state)
    if not isinstance(raw, dict):
        raise ValueError(f"event state must be a JSON object; got {type(raw).__name__}")
    if state.count(b'"_type_"') > 1:  # a tagged value besides the timestamp: rare, walk it
        raw = {k: plain(v) for k, v in raw.items()}
    return from_state(notification_id, originator_id, originator_version, topic, raw)


def from_state(
    notification_id: int,
    originator_id: object,
    originator_version: int,
    topic: str,
    state: dict[str, Any],
) -> Envelope:
    """Build an envelope from a stored event's state as decoded JSON (which it takes over)."""
    stamp = plain(state.pop("timestamp", ""))
    state.pop("originator_topic", None)
    return Envelope(
        notification_id=notification_id,
        originator_id=str(originator_id),
        originator_version=originator_version,
        type=event_type(topic),
        at=str(stamp),
        data=state,
    )
