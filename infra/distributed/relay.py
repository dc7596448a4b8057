"""The relay: follows the PostgreSQL notification log and produces every event to Kafka.

It reads through eventsourcing's subscription (LISTEN/NOTIFY, no polling), produces
with an idempotent producer and acks=all, and saves its position in PostgreSQL only
after the broker acknowledged a batch: at-least-once, resuming after a crash.
Consumers dedupe by notification id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from eventsourcing.persistence import ApplicationRecorder, Notification
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from projections.envelope import event_type

log = logging.getLogger(__name__)

BATCH = 500


def encode(notification: Notification) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the Kafka record for a stored event."""
    record: dict[str, object] = {
        "notification_id": notification.id,
        "originator_id": str(notification.originator_id),
        "originator_version": notification.originator_version,
        "topic": notification.topic,
        "state": notification.state.decode(),
    }
    value = orjson.dumps(record)
    headers = [
        ("notification_id", str(notification.id).encode()),
        ("event_type", event_type(notification.topic).encode()),
    ]
    return str(notification.originator_id).encode(), value, headers


class RelayPosition:
    """In PostgreSQL: the last notification id the broker acknowledged, and the end offsets of
    the topic's partitions as last seen (end offsets never go back unless the broker lost data)."""

    def __init__(self, dsn: str, name: str, schema: str = "") -> None:
        import psycopg

        from infra.store.ddl_lock import ddl_lock

        self.name = name
        self.table = f"{schema}.linkage_relay_position" if schema else "linkage_relay_position"
        self._conn = psycopg.connect(dsn, autocommit=True)
        with ddl_lock(self._conn, schema):
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (name TEXT PRIMARY KEY, "
                "position BIGINT NOT NULL, offsets TEXT NOT NULL)"
            )

    def load(self) -> tuple[int, dict[int, int]]:
        row = self._conn.execute(
            f"SELECT position, offsets FROM {self.table} WHERE name = %s", (self.name,)
        ).fetchone()
        if row is None:
            return 0, {}
        return int(row[0]), {int(p): int(o) for p, o in orjson.loads(row[1]).items()}

    def save(self, position: int, offsets: dict[int, int]) -> None:
        self._conn.execute(
            f"INSERT INTO {self.table} (name, position, offsets) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, "
            "offsets = EXCLUDED.offsets",
            (self.name, position, orjson.dumps({str(p): o for p, o in offsets.items()}).decode()),
        )

    def close(self) -> None:
        self._conn.close()


# The topic is the replayable copy of the store that workers rebuild their views from: it keeps
# every record (a broker default such as Apache Kafka's 7 days would silently drop history).
TOPIC_CONFIGS = {"retention.ms": "-1"}


async def ensure_topic(bootstrap: str, topic: str, partitions: int, replication: int,
                       configs: dict[str, str] | None = None) -> None:
    """Create the topic (with `configs`) unless it exists; warn about one that keeps too little."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(topic, partitions, replication,
                                                    topic_configs=configs)])
        elif configs is not None:
            await _warn_on_retention(admin, topic)
    finally:
        await admin.close()


async def recreate_topic(bootstrap: str, topic: str, partitions: int, replication: int,
                         configs: dict[str, str] | None = None) -> None:
    """Delete the topic and create it again: an empty one made with the wrong partition count,
    or one whose broker lost records (what it still holds is not the log any more)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
        for _ in range(50):  # deletion may take a moment to show
            if topic not in await admin.list_topics():
                break
            await asyncio.sleep(0.1)
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(topic, partitions, replication,
                                                topic_configs=configs)])
    finally:
        await admin.close()


async def topic_config(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    """A topic's configuration as the broker reports it (entries it leaves out are absent)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return {entry[0]: entry[1] for response in responses for resource in response.resources
            for entry in resource[4]}


async def _warn_on_retention(admin: AIOKafkaAdminClient, topic: str) -> None:
    try:
        config = await topic_config(admin, topic)
    except KafkaError as exc:
        log.info("relay: cannot read the configuration of %s (%s)", topic, exc)
        return
    retention = config.get("retention.ms")
    if retention not in (None, "-1"):
        log.warning("relay: topic %s deletes records after retention.ms=%s; a worker that "
                    "rebuilds its views from it then misses history. Keep everything: "
                    "kafka-configs --alter --entity-type topics --entity-name %s "
                    "--add-config retention.ms=-1", topic, retention, topic)
    if "compact" in config.get("cleanup.policy", ""):
        # Keys are aggregate ids: compaction would keep only each aggregate's last event.
        log.warning("relay: topic %s is compacted (cleanup.policy=%s), which keeps only the last "
                    "event of each incident; use cleanup.policy=delete with retention.ms=-1",
                    topic, config["cleanup.policy"])


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fresh metadata
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


class BrokerLostData(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """The broker no longer holds records it acknowledged (e.g. an in-memory broker restarted)."""


class Relay:
    check_every = 2.0  # seconds between checks that the broker still holds what it acknowledged

    def __init__(
        self,
        recorder: ApplicationRecorder,
        position: RelayPosition,
        *,
        bootstrap: str,
        topic: str,
        partitions: int = 4,
        replication: int = 1,
        idempotence: bool = True,
        owner: object = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.recorder = recorder
        self.store = position
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.replication = replication
        self.idempotence = idempotence
        self.owner = owner  # the application that owns the recorder: keeps its pool open
        self.position = 0
        self.sent = 0
        self.registry = registry or CollectorRegistry()
        self._lag = Gauge("linkage_relay_lag", "notification ids not yet acknowledged by Kafka",
                          registry=self.registry)
        self._position = Gauge("linkage_relay_position", "last notification id Kafka acknowledged",
                               registry=self.registry)
        self._active = Gauge("linkage_relay_active",
                             "1 while this relay relays (holds the lease), 0 on standby",
                             registry=self.registry)

    def lag(self) -> int:
        """Notification ids recorded but not yet acknowledged by the broker."""
        return max(0, (self.recorder.max_notification_id() or 0) - self.position)

    async def run(self, retry_every: float = 1.0) -> None:
        """Relay until cancelled; a broker that goes away is waited for, never skipped."""
        self._active.set(1)
        try:
            while True:
                try:
                    await self.run_once()
                except (KafkaError, OSError) as exc:
                    log.warning("relay: Kafka at %s failed (%s); retrying in %gs",
                                self.bootstrap, exc, retry_every)
                    await asyncio.sleep(retry_every)
        finally:
            self._active.set(0)

    async def _watermarks(self, seen: dict[int, int]) -> dict[int, int]:
        """The topic's end offsets now; raises BrokerLostData if one went back since `seen`."""
        ends = await end_offsets(self.bootstrap, self.topic)
        if len(ends) > self.partitions and not any(ends.values()):
            # An empty topic with the broker's default partition count: a consumer's metadata
            # request auto-created it (after a broker lost its data) before we could. Nothing is
            # in it, so it is made again as the log needs it.
            log.warning("relay: %s was created empty with %d partitions; recreating it with %d",
                        self.topic, len(ends), self.partitions)
            await recreate_topic(self.bootstrap, self.topic, self.partitions, self.replication,
                                 TOPIC_CONFIGS)
            ends = await end_offsets(self.bootstrap, self.topic)
        if len(ends) > self.partitions:
            # More partitions than we create: the worker would read the log out of order.
            raise RuntimeError(f"Kafka topic {self.topic} has {len(ends)} partitions; expected "
                               f"{self.partitions} (the worker folds the log in its order)")
        if any(ends.get(p, 0) < offset for p, offset in seen.items()):
            log.warning("relay: %s holds up to offsets %s, but it held %s", self.topic, ends, seen)
            raise BrokerLostData(self.topic)
        return ends

    async def run_once(self) -> None:
        position, seen = await asyncio.to_thread(self.store.load)
        await ensure_topic(self.bootstrap, self.topic, self.partitions, self.replication,
                           TOPIC_CONFIGS)
        try:
            seen = await self._watermarks(seen)
        except BrokerLostData:
            # What the topic holds now (records produced into the emptied broker before we
            # noticed) does not start the log: a worker group rebuilding from it would fold
            # them first and skip the log's start as redeliveries. Make it again, empty.
            log.warning("relay: the broker lost acknowledged records of %s; making it again and "
                        "relaying from notification 1", self.topic)
            await recreate_topic(self.bootstrap, self.topic, self.partitions, self.replication,
                                 TOPIC_CONFIGS)
            position, seen = 0, {}
            await asyncio.to_thread(self.store.save, 0, {})
        self.position = position
        self._position.set(position)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
                                    enable_idempotence=self.idempotence,
                                    max_batch_size=256 * 1024)
        await producer.start()
        loop = asyncio.get_running_loop()
        inbox: queue.Queue[Notification | BaseException] = queue.Queue(BATCH * 4)
        ready = asyncio.Event()
        subscription = self.recorder.subscribe(gt=position)
        feeder = threading.Thread(target=self._feed, args=(subscription, inbox, ready, loop),
                                  name="relay-subscription", daemon=True)
        feeder.start()
        log.info("relay: following notifications after %d into %s at %s",
                 position, self.topic, self.bootstrap)
        next_check = loop.time() + self.check_every
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ready.wait(), self.check_every)
                ready.clear()
                while batch := self._take(inbox):
                    await self._send(producer, batch, seen)
                if loop.time() >= next_check:
                    # A restarted in-memory broker answers as if nothing happened: look.
                    next_check = loop.time() + self.check_every
                    seen = await self._watermarks(seen)
                    await asyncio.to_thread(self.store.save, self.position, seen)
        finally:
            subscription.stop()
            while feeder.is_alive():  # unblock a feeder waiting on a full inbox
                self._take(inbox, raise_errors=False)
                await asyncio.sleep(0.02)
            with contextlib.suppress(Exception):
                await producer.stop()

    @staticmethod
    def _take(inbox: queue.Queue[Notification | BaseException],
              raise_errors: bool = True) -> list[Notification]:
        batch: list[Notification] = []
        while len(batch) < BATCH:
            try:
                item = inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, BaseException):
                if raise_errors:
                    raise item
                continue
            batch.append(item)
        return batch

    async def _send(self, producer: AIOKafkaProducer, batch: Sequence[Notification],
                    seen: dict[int, int]) -> None:
        futures = []
        for notification in batch:
            key, value, headers = encode(notification)
            futures.append(await producer.send(self.topic, value=value, key=key, headers=headers))
        acknowledged = await asyncio.gather(*futures)
        for record in acknowledged:
            # Only this relay appends (it holds the lease): an offset below the end offset last
            # seen means the broker lost what it had (an in-memory broker restarted) and this
            # batch landed at the start of an empty log. Say so now, before the position moves.
            # (`seen` stays as the broker reported it: Tansu's end offsets lag the offsets it
            # acknowledges within a batch, so the two are compared, never mixed.)
            if record.offset < seen.get(record.partition, 0):
                log.warning("relay: %s took a record at offset %d of partition %d, below the "
                            "%d it held", self.topic, record.offset, record.partition,
                            seen[record.partition])
                raise BrokerLostData(self.topic)
        # Only now is the batch the broker's: save the position after the acknowledgement.
        self.position = batch[-1].id
        await asyncio.to_thread(self.store.save, self.position, seen)
        self.sent += len(batch)
        self._position.set(self.position)

    @staticmethod
    def _feed(subscription: Any, inbox: queue.Queue[Any], ready: asyncio.Event,
              loop: asyncio.AbstractEventLoop) -> None:
        """Thread: read the blocking subscription, wake the event loop for each notification."""
        try:
            for notification in subscription:
                inbox.put(notification)
                loop.call_soon_threadsafe(ready.set)
        except BaseException as exc:
            inbox.put(exc)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ready.set)

    async def report_lag(self, every: float = 1.0) -> None:
        """Keep the lag gauge current, and log it when it changes."""
        last = -1
        while True:
            try:
                lag = await asyncio.to_thread(self.lag)
            except Exception as exc:
                log.warning("relay: cannot read the notification log: %s", exc)
            else:
                self._lag.set(lag)
                if lag != last:
                    log.info("relay: position %d, lag %d", self.position, lag)
                    last = lag
            await asyncio.sleep(every)

    def serve_metrics(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose /metrics (linkage_relay_lag, linkage_relay_position) over HTTP."""
        start_http_server(port, addr=host, registry=self.registry)
