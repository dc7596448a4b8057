"""The faust-streaming app: `linkage.events` -> re-keyed by center -> center views -> fan-out.

Two agents of a few lines each:
- `route` reads stored events (keyed by aggregate) and sends one copy per center the event
  routes to, keyed by center, remembering the source partition;
- `project` folds each copy into the center's state in a changelogged table (the same
  projection functions as the embedded runner, storms included) and hands the delta to the
  fan-out.
The events topic has ONE partition (EVENTS_PARTITIONS): the relay writes it in notification
order, `route` reads it in that order, and each center's copies share a by-center partition,
so every center folds its events in log order, as a replay does. The fold is not
order-free (a storm's threshold, an alert listed before it, an evicted one), so this order is
what makes the distributed views equal the embedded ones whatever the interleaving. The heavy
work, the fold, still spreads over `partitions` by-center partitions.
The fan-out (Redis in production) is injected: this package does no I/O of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import faust
from faust.types import TP

from projections.center_view import routes_to
from projections.envelope import Envelope, from_stored
from projections.patch import Change, View
from streams.folding import CenterState, as_state, fold_each, new_state
from streams.transport import transport_class

TABLE = "center-views"
EVENTS_PARTITIONS = 1  # the log's total order, kept (see the module docstring)


class StoredEvent(faust.Record, serializer="json"):
    """A stored event as the relay produces it (value of `linkage.events`)."""

    notification_id: int
    originator_id: str
    originator_version: int
    topic: str
    state: str

    def envelope(self) -> Envelope:
        return from_stored(self.notification_id, self.originator_id, self.originator_version,
                           self.topic, self.state.encode())


class Routed(faust.Record, serializer="json"):
    """A stored event on its way to one center, with the partition it was read from."""

    center: str
    partition: int
    event: StoredEvent


class Fanout(Protocol):
    """Where deltas go (Redis): publish must not return before the deltas are stored."""

    async def publish(
        self, center: str, epoch: str, deltas: list[tuple[int, list[Change]]], view: View
    ) -> None:
        """Store and publish consecutive deltas of one center; `view` is the view after the last."""


@dataclass(frozen=True)
class WorkerConfig:
    app_id: str
    bootstrap: str
    topic: str
    centers: frozenset[str]
    partitions: int = 4
    replication: int = 1
    datadir: Path = Path("var/worker")
    fetch_max_wait_ms: int = 100  # how long a fetch may wait for data (see streams/transport.py)
    check_every: float = 0.5  # seconds between checks that the broker kept our records
    # The project agent folds up to `batch_size` events, or what `batch_within` seconds
    # bring, then writes each touched center once: one table (changelog) write and one
    # Redis round trip per center per batch instead of per event.
    batch_size: int = 500
    batch_within: float = 0.02
    options: dict[str, Any] = field(default_factory=dict)


def _raise(reason: str) -> None:
    raise BrokerLostRecords(reason)


class BrokerLostRecords(RuntimeError):
    """The broker no longer holds records it had (an in-memory broker restarted)."""


def create_app(
    config: WorkerConfig,
    fanout: Fanout,
    new_epoch: Callable[[], str] = lambda: uuid.uuid4().hex[:12],
    on_broker_lost: Callable[[str], None] = _raise,
) -> faust.App:
    config.datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        config.app_id,
        broker=f"kafka://{config.bootstrap}",
        store="memory://",  # tables are rebuilt from their changelog on start
        datadir=str(config.datadir),
        autodiscover=False,
        web_enabled=False,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        topic_partitions=config.partitions,
        topic_replication_factor=config.replication,
        table_standby_replicas=0,
        processing_guarantee="at_least_once",
        **config.options,
    )
    transport = transport_class(config.fetch_max_wait_ms)
    app.transport = transport(app.conf.broker_consumer, app)
    events = app.topic(config.topic, key_type=bytes, value_type=StoredEvent,
                       partitions=EVENTS_PARTITIONS)
    by_center = app.topic(f"{config.app_id}-by-center", key_type=str, value_type=Routed,
                          partitions=config.partitions, internal=True)
    views = app.Table(TABLE, default=None, partitions=config.partitions, key_type=str)
    # The worker's own topics only grow. If their end offsets go back, the broker lost them
    # (and the table's changelog with them): these tables can no longer be trusted.
    watched = [TP(by_center.get_topic_name(), p) for p in range(config.partitions)]
    seen: dict[TP, int] = {}

    @app.timer(config.check_every, name="watch-broker")
    async def watch_broker() -> None:
        try:
            ends = await app.consumer.highwaters(*watched)
        except Exception:  # not reachable right now: the next tick checks again
            return
        back = {tp.partition: (seen[tp], ends.get(tp, 0)) for tp in seen
                if ends.get(tp, 0) < seen[tp]}
        if back:
            on_broker_lost(f"{by_center.get_topic_name()} went back (partition: (was, now)) {back}")
        seen.update(ends)

    @app.agent(events, name="route")
    async def route(stream: faust.StreamT[StoredEvent]) -> None:
        async for event in stream.events():
            stored: StoredEvent = event.value
            envelope = stored.envelope()
            for center in _centers(envelope, config.centers):
                await by_center.send(key=center, value=Routed(center, event.message.partition,
                                                              stored))

    @app.agent(by_center, name="project")
    async def project(stream: faust.StreamT[Routed]) -> None:
        async for batch in stream.take_events(config.batch_size, within=config.batch_within):
            # center -> (its events of the batch as (source partition, event), the by-center
            # partition: a center's copies share one)
            grouped: dict[str, tuple[list[tuple[int, Envelope]], int]] = {}
            for event in batch:
                routed: Routed = event.value
                items = grouped.setdefault(routed.center, ([], event.message.partition))[0]
                items.append((routed.partition, routed.event.envelope()))
            touched: dict[str, tuple[CenterState, list[tuple[int, list[Change]]], int]] = {}
            for center, (items, partition) in grouped.items():
                state = as_state(views.get(center)) or new_state(center, new_epoch())
                before = dict(state["applied"])
                deltas = fold_each(state, items)  # one seq per changing event (see fold_each)
                if deltas or state["applied"] != before:
                    touched[center] = (state, deltas, partition)
            for center, (state, deltas, partition) in touched.items():
                if deltas:
                    # Redis first: a crash before the table write replays these events with
                    # the same (epoch, seq)s, which the fan-out recognises and drops.
                    await fanout.publish(center, state["epoch"], deltas, state["view"])
                _store(views, partition, center, state)

    return app


def _store(table: Any, partition: int, key: str, value: Any) -> None:
    """Set a changelogged table key after a batch, when no single event is current.

    What `table[key] = value` does inside per-event iteration: changelog first, then the
    local store, on the partition the batch's events for that key came from."""
    table.send_changelog(partition, key, value)
    table.data[key] = value


def _centers(envelope: Envelope, known: Iterable[str]) -> list[str]:
    return [center for center in routes_to(envelope) if center in known]
