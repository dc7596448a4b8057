"""The faust-streaming app: `linkage.events` -> re-keyed by center -> center views -> fan-out.

Two stages:
- `route` (streams/router.py: a plain aiokafka consumer, not an agent) reads stored events
  (keyed by aggregate) in batches and sends, per center the batch's events route to, one
  record keyed by the center carrying its events with their source partition, in log order
  (streams/routing.py);
- the `project` agent folds each record's events into the center's state (the same projection
  functions as the embedded runner, storms included), hands the deltas and the view to the
  fan-out, the incident records to the read model, and stores the state in a changelogged
  table as records of bounded size (streams/center_table.py).
The events topic has ONE partition (EVENTS_PARTITIONS): the relay writes it in notification
order, `route` reads it in that order, and each center's copies share a by-center partition,
so every center folds its events in log order, as a replay does. The fold is not
order-free (a storm's threshold, an alert listed before it, an evicted one), so this order is
what makes the distributed views equal the embedded ones whatever the interleaving. The heavy
work, the fold, still spreads over `partitions` by-center partitions.
The fan-out (Redis in production) and the read model (PostgreSQL) are injected: this package
does no I/O of its own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import faust
from faust.exceptions import NotReady
from faust.types import TP

from projections.cases import Case
from projections.center_view import QUEUE_SIZE
from projections.patch import Change, View
from projections.records import touched
from streams import routing
from streams.center_table import SEP, Write, batch_writes, load, next_offsets, offset_write
from streams.folding import CenterState, fold_each, new_state
from streams.offsets import admit
from streams.router import Router
from streams.transport import transport_class

log = logging.getLogger(__name__)

# Named anew when its records became bounded (they were whole views): a worker of the old
# layout is replaced under a new LINKAGE_WORKER_ID, which rebuilds from the relay's topic.
# The same holds for the by-center records' layout (streams/routing.py): a worker whose
# by-center topic still holds records of another layout starts a new generation
# (`linkage replay --mode distributed`).
TABLE = "center-state"
EVENTS_PARTITIONS = 1  # the log's total order, kept (see the module docstring)


class Fanout(Protocol):
    """Where deltas go (Redis): publish must not return before the deltas are stored."""

    async def publish(
        self, center: str, epoch: str, deltas: list[tuple[int, list[Change]]], view: View,
    ) -> None:
        """Store and publish consecutive deltas of one center with the view after the last
        (the fan-out stores the records they touched, or all of them: projections/records.py)."""


class Rows(Protocol):
    """The per-incident read model (PostgreSQL): upserts that never go back a version."""

    async def upsert(self, rows: list[Case]) -> None: ...


@dataclass(frozen=True)
class WorkerConfig:
    app_id: str
    bootstrap: str
    topic: str
    centers: frozenset[str]
    partitions: int = 4
    replication: int = 1
    datadir: Path = Path("var/worker")
    fetch_max_wait_ms: int = 20  # how long a fetch may wait for data (see streams/transport.py)
    check_every: float = 0.5  # seconds between checks that the broker kept our records
    # `route` sends one by-center record per center for up to `batch_size` stored events (what
    # one fetch brought: it waits for no more); `project` folds up to `batch_size` such
    # records, or what `batch_within` seconds bring, then writes each touched center once: one
    # table (changelog) write and one Redis round trip per center per batch instead of per
    # event. Its window is waited in full when fewer records come (faust's take_events): latency.
    batch_size: int = 500
    batch_within: float = 0.01
    queue_size: int = QUEUE_SIZE  # open cases a view's urgency queue holds
    options: dict[str, Any] = field(default_factory=dict)


def _raise(reason: str) -> None:
    raise BrokerLostRecords(reason)


class BrokerLostRecords(RuntimeError):
    """The broker no longer holds records it had (an in-memory broker restarted)."""


class WorkerApp(faust.App):
    """The worker's faust app and the events consumer that feeds it (streams/router.py)."""

    event_router: Router


def create_app(
    config: WorkerConfig,
    fanout: Fanout,
    new_epoch: Callable[[], str] = lambda: uuid.uuid4().hex[:12],
    on_broker_lost: Callable[[str], None] = _raise,
    rows: Rows | None = None,
) -> WorkerApp:
    config.datadir.mkdir(parents=True, exist_ok=True)
    app = WorkerApp(
        config.app_id,
        broker=f"kafka://{config.bootstrap}",
        store="memory://",  # tables are rebuilt from their changelog on start
        datadir=str(config.datadir),
        autodiscover=False,
        web_enabled=False,
        producer_acks=-1,
        producer_max_batch_size=256 * 1024,  # faust's 16 KiB: many small produce requests
        consumer_auto_offset_reset="earliest",
        topic_partitions=config.partitions,
        topic_replication_factor=config.replication,
        table_standby_replicas=0,
        processing_guarantee="at_least_once",
        **config.options,
    )
    transport = transport_class(config.fetch_max_wait_ms)
    app.transport = transport(app.conf.broker_consumer, app)
    # `internal`: the worker creates the topic (with one partition) before it subscribes, as
    # the relay does. Otherwise a worker that starts first, e.g. after a broker restart, has
    # the broker create it with its default partition count, which the relay then refuses.
    # Kept forever, as the relay creates it (infra/distributed/relay.py TOPIC_CONFIGS): views are
    # rebuilt from it.
    # Values are raw bytes, decoded by streams/routing.py (faust Records cost more than the fold).
    events = app.topic(config.topic, key_type=bytes, value_type=bytes, value_serializer="raw",
                       partitions=EVENTS_PARTITIONS, internal=True, config={"retention.ms": "-1"})
    by_center = app.topic(f"{config.app_id}-by-center", key_type=str, value_type=bytes,
                          value_serializer="raw", partitions=config.partitions, internal=True)
    views = app.Table(TABLE, default=None, partitions=config.partitions, key_type=str)
    # The worker's own topics only grow. If their end offsets go back, the broker lost them
    # (and the table's changelog with them): these tables can no longer be trusted.
    watched = [TP(by_center.get_topic_name(), p) for p in range(config.partitions)]
    seen: dict[TP, int] = {}

    @app.timer(config.check_every, name="watch-broker")  # type: ignore[untyped-decorator]
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

    # `route` is no agent: faust's per-record path cost more than routing (streams/router.py);
    # its plain consumer commits only what it routed, so it skips nothing. `project` checks
    # each partition's offsets (streams/offsets.py): faust's consumer can skip records around
    # a start, and `read` fetches them from the broker.
    read = functools.partial(read_records, config.bootstrap)
    app.event_router = Router(app, config.bootstrap, events, by_center, config.centers,
                              config.batch_size, config.fetch_max_wait_ms)
    app.task(app.event_router.run)

    # The table's content as center states, built on the first batch after the table was
    # (re)loaded: partitions assigned or revoked drop it (see `forget`).
    cache: dict[str, Any] = {}  # "states", and "repairs" still to write

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust types the signal kwarg
    async def forget_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        _forget(views, cache, {tp.partition for tp in revoked
                               if tp.topic == by_center.get_topic_name()})

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def forget_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        cache.clear()

    def states() -> dict[str, CenterState]:
        if "states" not in cache:
            loaded, repairs = load(list(views.data.items()), config.queue_size)
            cache["repairs"] = repairs
            cache["states"] = loaded
            # Where each partition's stored records end (a partition without a marker: from the
            # group's committed offset).
            cache["offsets"] = next_offsets(views.data.items())
        states: dict[str, CenterState] = cache["states"]
        return states

    @app.agent(by_center, name="project")
    async def project(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take_events(  # type: ignore[attr-defined]  # not in StreamT
                config.batch_size, within=config.batch_within):
            known = states()
            offsets: dict[int, int] = cache["offsets"]
            for event in batch:
                if event.message.partition not in offsets:
                    committed = _committed(app, event.message.tp)
                    if committed is not None:
                        offsets[event.message.partition] = committed
            batch = await admitted(read, by_center.get_topic_name(), batch, offsets)
            # center -> (its events of the batch as (source partition, event), the by-center
            # partition: a center's records share one)
            grouped: dict[str, tuple[routing.Copies, int]] = {}
            ends: dict[int, int] = {}  # by-center partition -> the batch's last offset in it
            for event in batch:
                center, items = routing.copies(event.value)
                grouped.setdefault(center, ([], event.message.partition))[0].extend(items)
                ends[event.message.partition] = event.message.offset
            if cache.get("repairs"):
                await _write(app, views, cache.pop("repairs"))
            written: dict[str, Case] = {}
            touched_centers: list[tuple[CenterState, list[tuple[int, list[Change]]], int,
                                        set[str]]] = []
            for center, (items, partition) in grouped.items():
                state = known.get(center)
                if state is None:
                    state = known[center] = new_state(center, new_epoch(), config.queue_size)
                before = dict(state.applied)
                state.center.rows = {}
                deltas = fold_each(state, items)  # one seq per changing event (see fold_each)
                for case in state.center.rows.values():
                    if case["version"] > written.get(case["id"], {"version": 0})["version"]:
                        written[case["id"]] = case
                state.center.rows = None
                if deltas or state.applied != before:
                    cases = {e.originator_id for _, e in items if e.aggregate == "Incident"}
                    touched_centers.append((state, deltas, partition, cases))
            # Redis and the read model first, together: a crash before the table write replays
            # these events with the same (epoch, seq)s, which the fan-out recognises and drops,
            # and the same incident versions, which the read model keeps as they are.
            stores = [fanout.publish(state.view["center"], state.epoch, deltas, state.view)
                      for state, deltas, _, _ in touched_centers if deltas]
            if rows is not None and written:
                stores.append(rows.upsert(list(written.values())))
            await asyncio.gather(*stores)
            for state, deltas, partition, cases in touched_centers:
                names = touched(c for _, changes in deltas for c in changes)
                state.batch += 1
                await _write(app, views, batch_writes(state, partition, state.batch, names,
                                                      cases, views.data.get))
            # Last, after the centers' records on the same changelog partitions.
            await _write(app, views, [offset_write(p, end) for p, end in ends.items()])

    return app


def _committed(app: faust.App, tp: TP) -> int | None:
    """The group's committed offset of a partition, as faust last read or wrote it (None: not
    known). faust keeps it on its consumer without a public accessor."""
    committed = getattr(app.consumer, "_committed_offset", {}).get(tp)
    return committed if isinstance(committed, int) and committed >= 0 else None


@dataclass(frozen=True)
class _Message:
    partition: int
    offset: int


@dataclass(frozen=True)
class _Fetched:
    """A record read straight from the broker, shaped as the agents read faust's events."""

    message: _Message
    value: bytes


ReadRecords = Callable[[str, int, int, int], Awaitable[list[Any]]]  # topic, partition, start, end


async def admitted(read: ReadRecords, topic: str, batch: list[Any],
                   expected: dict[int, int]) -> list[Any]:
    """The batch's events to process, each partition's in offset order without a gap: records
    the consumer skipped are read straight from the broker and put in their place
    (streams/offsets.py). Seeking faust's consumer back does not work: its reading loop moves
    its read offset past the seek with what it fetched already, and drops what comes again."""
    before = dict(expected)
    split = admit(((e.message.partition, e.message.offset) for e in batch), expected)
    if not split.seek:
        return [batch[i] for i in split.take]
    expected.clear()
    expected.update(before)
    fetched: list[Any] = []
    for partition, want in split.seek.items():
        upto = min(e.message.offset for e in batch
                   if e.message.partition == partition and e.message.offset > want)
        log.warning("%s[%d]: the consumer skipped offsets %d to %d; reading them from the broker",
                    topic, partition, want, upto - 1)
        try:
            records = await read(topic, partition, want, upto)
        except Exception:  # the broker is not answering now: the next batch asks again
            log.warning("%s[%d]: could not read offsets %d to %d", topic, partition, want,
                        upto - 1, exc_info=True)
            continue
        if records and records[0].message.offset != want:  # the reader starts at the earliest
            log.error("%s[%d]: records %d to %d are no longer on the broker (retention); "
                      "reading on from %d", topic, partition, want,
                      records[0].message.offset - 1, records[0].message.offset)
            expected[partition] = records[0].message.offset
        fetched += records
    # each partition's records in offset order (a stable sort: faust's repeats stay repeats)
    combined = sorted([*batch, *fetched], key=lambda e: (e.message.partition, e.message.offset))
    again = admit(((e.message.partition, e.message.offset) for e in combined), expected)
    if again.seek:  # still missing: nothing past them is taken, and the next batch asks again
        log.error("%s: records still missing after reading from the broker, from %s", topic,
                  again.seek)
    return [combined[i] for i in again.take]


async def read_records(bootstrap: str, topic: str, partition: int, start: int,
                       end: int) -> list[Any]:
    """The records of a partition from `start` up to `end` (excluded), or from the earliest the
    broker still holds, read by a consumer of no group (it commits nothing)."""
    import aiokafka

    tp = aiokafka.TopicPartition(topic, partition)
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                         enable_auto_commit=False,
                                         auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[_Fetched] = []
        empty = 0
        while (records[-1].message.offset if records else start - 1) < end - 1 and empty < 20:
            got = (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
            empty = 0 if got else empty + 1
            records += [_Fetched(_Message(partition, r.offset), r.value) for r in got
                        if start <= r.offset < end]
            if got and got[-1].offset >= end - 1:
                break
        return records
    finally:
        await consumer.stop()


async def _write(app: faust.App, table: Any, writes: list[Write]) -> None:
    """Set (or delete, for None) changelogged table keys after a batch, changelog first, then
    the local store, on the partitions given.

    Produced straight to the changelog topic in one burst (through faust's per-message buffer,
    `send_changelog`, a batch of a few hundred records took seconds); in order per partition,
    and flushed by faust before it commits the offsets of the events they came from."""
    topic = table.changelog_topic
    name = topic.get_topic_name()
    for partition, key, value in writes:
        raw_key, _ = topic.prepare_key(key, table.key_serializer)
        raw_value = None if value is None else topic.prepare_value(value,
                                                                   table.value_serializer)[0]
        try:
            await app.producer.send(name, raw_key, raw_value, partition, None, None)
        except NotReady:  # no producer (an agent's test context): faust's buffered path
            table.send_changelog(partition, key, value)
        if value is None:
            table.data.pop(key, None)
        else:
            table.data[key] = value


def _forget(table: Any, cache: dict[str, Any], partitions: set[int]) -> None:
    """Drop the states and table keys of centers on partitions this worker no longer owns: the
    memory store keeps keys written outside recovery, and they would be stale on return."""
    cache.clear()
    if not partitions:
        return
    owned = {key: value.get("partition", value.get("p")) for key, value in table.data.items()
             if isinstance(value, dict)}
    gone = {key.partition(SEP)[0] for key, partition in owned.items()
            if partition in partitions and not key.startswith(SEP)}
    for key in [k for k in table.data if k.partition(SEP)[0] in gone
                or (k.startswith(SEP) and owned.get(k) in partitions)]:
        table.data.pop(key, None)

