"""Event serialization with orjson.

Events keep their attributes to JSON types; the only rich value eventsourcing
puts in an event's state is the `timestamp` datetime, which is tagged the same
way eventsourcing's JSONTranscoder tags it, so stored events stay readable by
either transcoder.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Transcoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def tag(value: datetime) -> dict[str, str]:
    """How a datetime is stored (encoding the tag gives the same bytes as the datetime)."""
    return {"_type_": "datetime_iso", "_data_": value.isoformat()}


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return tag(obj)
    if isinstance(obj, UUID):
        return {"_type_": "uuid_hex", "_data_": obj.hex}
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot serialize {type(obj).__name__} in an event; expected JSON types")


def _revive(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 2 and "_type_" in value and "_data_" in value:
        kind = value["_type_"]
        if kind == "datetime_iso":
            return datetime.fromisoformat(value["_data_"])
        if kind == "uuid_hex":
            return UUID(value["_data_"])
    return value


class OrjsonTranscoder(Transcoder):
    """Encodes event state with orjson; revives tagged top-level values."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_default, option=_OPTIONS)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        if isinstance(state, dict):
            return {key: _revive(value) for key, value in state.items()}
        return state


def plain(value: Any) -> Any:
    """A decoded state value with tags turned into plain JSON (ISO strings, hex)."""
    if isinstance(value, dict):
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            return value["_data_"]
        return {k: plain(v) for k, v in value.items()}
    return value
