"""The records the worker reads and writes between its agents, as bytes (orjson, no faust Record).

- `linkage.events` (the relay's, infra/distributed/relay.py `encode`): one stored event, a JSON
  object {notification_id, originator_id, originator_version, topic, state (text)};
- `<app>-by-center`: one record per (center, batch of stored events read by `route`), keyed by
  the center: `{"center": ..., "events": [[source partition, envelope], ...]}` in log order, the
  envelope's fields as `projections.envelope.Envelope` has them (decoded once, by `route`).

One record per center per batch instead of one per event per center: a stored event routes to
its township, its district and the city, and faust's per-record cost (a Record decoded with
type checks, a produce, a commit entry) was most of what the worker did. Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from projections.center_view import routes_to
from projections.envelope import Envelope, from_stored

Copies = list[tuple[int, Envelope]]  # (source partition, event) for one center, in log order
# A by-center record's events stop at about this many bytes (the producer refuses a record over
# its max_request_size, 1 MiB): a center with more in one batch gets several records.
RECORD_BYTES = 256 * 1024


def stored_envelope(raw: bytes) -> Envelope:
    """The envelope of one `linkage.events` record's value."""
    stored = orjson.loads(raw)
    return from_stored(stored["notification_id"], stored["originator_id"],
                       stored["originator_version"], stored["topic"], stored["state"].encode())


def route(records: Iterable[tuple[int, bytes]], centers: frozenset[str],
          limit: int = RECORD_BYTES) -> list[tuple[str, bytes]]:
    """The by-center records, as (center, value), for the centers among `centers` that the
    (source partition, stored event value)s route to: per center, its events in order, in as
    few records of about `limit` bytes as they fit. Each event is encoded once, whatever the
    number of its centers."""
    copies: dict[str, list[list[list[object]]]] = {}  # center -> its records' events
    sizes: dict[str, int] = {}
    for partition, raw in records:
        envelope = stored_envelope(raw)
        encoded: bytes | None = None
        for center in routes_to(envelope):
            if center not in centers:
                continue
            if encoded is None:
                encoded = orjson.dumps(envelope)
            chunks = copies.setdefault(center, [[]])
            if sizes.get(center, 0) + len(encoded) > limit and chunks[-1]:
                chunks.append([])
                sizes[center] = 0
            chunks[-1].append([partition, orjson.Fragment(encoded)])
            sizes[center] = sizes.get(center, 0) + len(encoded) + 8
    return [(center, orjson.dumps({"center": center, "events": events}))
            for center, chunks in copies.items() for events in chunks]


def copies(value: bytes) -> tuple[str, Copies]:
    """A by-center record's center and its (source partition, event)s."""
    record = orjson.loads(value)
    return record["center"], [(partition, Envelope(**fields))
                              for partition, fields in record["events"]]
