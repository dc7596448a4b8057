"""`route`: the events topic read in batches by a plain aiokafka consumer, re-keyed by center.

faust's path for each consumed record (a Message and an Event, an ack, sensor calls, a queue
hop into the stream, then `take_events`) cost more than routing the record: a third of the
worker's main thread for the one-partition events topic. This consumer takes what a fetch
brought (`getmany`), produces one by-center record per center per batch through the app's
producer (streams/routing.py), waits until the broker acknowledged them, and only then
commits the batch's offsets: at least once. An event routed twice (a crash or a takeover
between the produce and the commit) is dropped by the fold, which skips notification ids it
already applied (streams/folding.py), whichever copy lands first: each router sends a
center's events in log order, and a new owner starts at or before the old one's commit.

Its own consumer group, `<app id>-route`, separate from faust's: the broker gives the events
topic's one partition to one worker of the group at a time, and to another one when that
worker leaves or its session expires (the same timeouts as faust's group). A partition this
group never committed starts where faust's group (the same app id) left it, if it did: the
`route` agent read it before this consumer did, so an upgraded worker does not route the whole
log again (the group's offsets, had they expired, start it from the first record).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from streams import routing

log = logging.getLogger(__name__)


class Router:
    """Reads `events`, sends the by-center records; counts what it read (for /metrics)."""

    def __init__(self, app: Any, bootstrap: str, events: Any, by_center: Any,
                 centers: frozenset[str], batch_size: int, fetch_max_wait_ms: int) -> None:
        self.app = app
        self.bootstrap = bootstrap
        self.events = events  # faust topics: their names, key encoding and declaration
        self.by_center = by_center
        self.centers = centers
        self.batch_size = batch_size
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.received = 0  # records read from the events topic
        self.routed: dict[TopicPartition, int] = {}  # next offset to route, per partition
        self.committed: dict[TopicPartition, int] = {}  # the last offsets it committed
        self.consumer: AIOKafkaConsumer | None = None

    @property
    def group(self) -> str:
        return f"{self.app.conf.id}-route"

    def lag(self) -> tuple[int, int]:
        """(records of the assigned events partitions not routed yet, those partitions)."""
        consumer = self.consumer
        if consumer is None:
            return 0, 0
        assigned = consumer.assignment()
        behind = 0
        for tp in assigned:
            end = consumer.highwater(tp)
            if end is not None:
                behind += max(0, end - self.routed.get(tp, 0))
        return behind, len(assigned)

    def _consumer(self) -> AIOKafkaConsumer:
        conf = self.app.conf
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id=f"{conf.id}-route",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,  # Tansu holds a fetch this long
            max_poll_records=self.batch_size,
            session_timeout_ms=int(conf.broker_session_timeout * 1000),
            heartbeat_interval_ms=int(conf.broker_heartbeat_interval * 1000),
            rebalance_timeout_ms=int(conf.broker_rebalance_timeout * 1000),
        )

    async def run(self) -> None:
        """Route until cancelled; any other error stops the worker (its supervisor restarts
        it), which would otherwise fold nothing more while looking healthy."""
        try:
            # The events topic with its one partition, before subscribing (else the broker
            # may create it with its default count); by-center's is faust's already.
            await self.events.maybe_declare()
            await self.by_center.maybe_declare()
            name = self.events.get_topic_name()
            try:
                await self.adopt([TopicPartition(name, p) for p in range(self.events.partitions)])
            except KafkaError as exc:  # another worker of the group committed meanwhile, ...
                log.warning("route: could not look up the route agent's offsets (%s); "
                            "routing from the group's own, or the first record", exc)
            consumer = self._consumer()
            await consumer.start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("route: could not start the events consumer")
            await self.app.crash(exc)
            return
        self.consumer = consumer
        consumer.subscribe([self.events.get_topic_name()])
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                if batches:
                    await self.route(consumer, batches)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("route: stopped")
            await self.app.crash(exc)
        finally:
            self.consumer = None
            await consumer.stop()

    async def route(self, consumer: AIOKafkaConsumer,
                    batches: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Send one batch's by-center records, wait for the broker's acknowledgements, then
        commit the batch's offsets."""
        name = self.by_center.get_topic_name()
        records = [(tp.partition, record.value) for tp, batch in batches.items()
                   for record in batch]
        self.received += len(records)
        acks = []
        for center, value in routing.route(records, self.centers):
            key, _ = self.by_center.prepare_key(center, None)
            acks.append(await self.app.producer.send(name, key, value, None, None, None))
        await asyncio.gather(*acks)
        offsets = {tp: batch[-1].offset + 1 for tp, batch in batches.items() if batch}
        self.routed.update(offsets)
        try:
            await consumer.commit(offsets)
            self.committed.update(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # The partition moved to another worker meanwhile: it routes again from the last
            # commit, and the fold drops what this one already sent.
            log.warning("route: offsets not committed (%s); the next owner routes them again",
                        exc)

    async def adopt(self, partitions: list[TopicPartition]) -> None:
        """Commit, for each partition this group never committed, faust's group's offset:
        before subscribing, so that no fetch starts from the first record meanwhile."""
        group = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group,
                                 enable_auto_commit=False)
        faust_group = AIOKafkaConsumer(bootstrap_servers=self.bootstrap,
                                       group_id=self.app.conf.id, enable_auto_commit=False)
        await group.start()
        await faust_group.start()
        try:
            group.assign(partitions)  # to commit without joining: neither group is joined
            for tp in partitions:
                if await group.committed(tp) is not None:
                    continue
                offset = await faust_group.committed(tp)
                if offset is not None:
                    log.info("route: %s starts at offset %d, where the route agent left it",
                             tp, offset)
                    await group.commit({tp: offset})
        finally:
            await faust_group.stop()
            await group.stop()
