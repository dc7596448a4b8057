"""The event as every projection sees it, whatever carried it (SQLite, PostgreSQL, Kafka)."""

from __future__ import annotations

from collections.abc import Iterable
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


# The type of a marker a filtered reader returns to move a position past events it skipped.
SKIP = "Skip.Skip"


def skip_to(notification_id: int) -> Envelope:
    """A marker at this notification id, no event: folds ignore its type."""
    return Envelope(notification_id, "", 0, SKIP, "", {})


def event_type(topic: str) -> str:
    """'domain.incident:Incident.Accepted' -> 'Incident.Accepted'."""
    return topic.rsplit(":", 1)[-1]


_TYPES: dict[str, str] = {}  # topic -> event type: a log holds a few dozen topics
_TYPES_LIMIT = 1024


def _type_of(topic: str) -> str:
    kind = _TYPES.get(topic)
    if kind is None:
        kind = event_type(topic)
        if len(_TYPES) < _TYPES_LIMIT:
            _TYPES[topic] = kind
    return kind


def from_rows(rows: Iterable[tuple[int, object, int, str, bytes]]) -> list[Envelope]:
    """`from_stored` of each stored row (notification id, originator id, version, topic, state).

    One loop, no call per row but the decode and the envelope's: a replay reads tens of
    thousands of events a second, where each layer of calls per event weighed as much as
    the JSON decode itself."""
    loads = orjson.loads
    types = _TYPES
    envelopes: list[Envelope] = []
    append = envelopes.append
    for notification_id, originator_id, originator_version, topic, state in rows:
        raw = loads(state)
        if type(raw) is not dict:
            raise ValueError(f"event state must be a JSON object; got {type(raw).__name__}")
        if state.count(b'"_type_"') > 1:  # a tagged value besides the timestamp: rare, walk it
            raw = {k: plain(v) for k, v in raw.items()}
        stamp = raw.pop("timestamp", "")
        if type(stamp) is dict:  # plain(stamp), inline for the tag every stored event has
            stamp = (stamp["_data_"] if len(stamp) == 2 and "_type_" in stamp and "_data_" in stamp
                     else plain(stamp))
        raw.pop("originator_topic", None)
        kind = types.get(topic)
        append(Envelope(notification_id,
                        originator_id if type(originator_id) is str else str(originator_id),
                        originator_version, kind if kind is not None else _type_of(topic),
                        stamp if type(stamp) is str else str(stamp), raw))
    return envelopes


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
