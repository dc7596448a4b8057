"""The composition root: builds every adapter from settings and wires them together."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from starlette.applications import Starlette

from command_center.app import create_app
from command_center.hub import Hub
from command_center.types import Services
from domain.application import IncidentService
from domain.jurisdiction import Jurisdiction
from infra.embedded import EmbeddedRunner, ReadNotifications
from infra.jurisdiction_file import load_jurisdiction
from infra.preflight import check
from infra.redis_fanout import RedisFanout, RedisSubscriber, RedisViewSource
from infra.relay import Relay, RelayPosition
from infra.settings import Settings
from infra.view_store import PostgresViewStore, SQLiteViewStore, ViewStore
from projections.envelope import Envelope, from_stored
from streams.app import WorkerConfig
from streams.app import create_app as create_worker_app


def notification_reader(service: IncidentService) -> ReadNotifications:
    """Read envelopes after a position from the application's notification log."""

    def read(after: int, limit: int) -> list[Envelope]:
        notifications = service.recorder.select_notifications(start=after + 1, limit=limit)
        return [
            from_stored(n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in notifications
        ]

    return read


def build_service(settings: Settings, jurisdiction: Jurisdiction) -> IncidentService:
    def centers_for(grid: str) -> tuple[str, ...]:
        unit = jurisdiction.unit(grid)  # KeyError for an unknown id
        if unit.level != "grid":
            raise KeyError(grid)
        return jurisdiction.centers_for(grid)

    return IncidentService(centers_for, env=settings.eventsourcing_env())


def build_view_store(settings: Settings) -> ViewStore:
    if settings.store == "postgres":
        return PostgresViewStore(settings.postgres_dsn, keep=settings.history_size)
    return SQLiteViewStore(settings.views_path, keep=settings.history_size)


@dataclass
class Embedded:
    settings: Settings
    jurisdiction: Jurisdiction
    service: IncidentService
    views: ViewStore
    hub: Hub
    runner: EmbeddedRunner
    services: Services

    def app(self) -> Starlette:
        return create_app(self.services)

    def close(self) -> None:
        self.runner.stop()
        self.views.close()
        self.service.close()


def build_embedded(settings: Settings) -> Embedded:
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    service = build_service(settings, jurisdiction)
    views = build_view_store(settings)
    hub = Hub(queue_size=settings.console_queue)
    runner = EmbeddedRunner(
        notification_reader(service),
        views,
        [unit.id for unit in jurisdiction.centers()],
        hub,
        history_size=settings.history_size,
    )
    runner.catch_up()
    services = Services(
        jurisdiction=jurisdiction,
        incidents=service,
        hub=hub,
        views=runner,
        wake=runner.wake,
        max_body_bytes=settings.max_body_bytes,
        resume_wait=settings.resume_wait,
        max_overflows=settings.max_overflows,
        background=[runner.run],
        on_shutdown=[runner.stop],
    )
    return Embedded(settings, jurisdiction, service, views, hub, runner, services)


# -- distributed mode ---------------------------------------------------------


@dataclass
class DistributedHub:
    """One hub process: commands to PostgreSQL, views and deltas from Redis."""

    settings: Settings
    jurisdiction: Jurisdiction
    service: IncidentService
    hub: Hub
    source: RedisViewSource
    subscriber: RedisSubscriber
    services: Services

    def app(self) -> Starlette:
        return create_app(self.services)

    def close(self) -> None:
        self.service.close()


def build_hub(settings: Settings) -> DistributedHub:
    """A hub for `linkage serve --mode distributed`; fails fast when a service is unreachable."""
    settings = settings.with_(store="postgres")
    check(settings, "postgres", "redis")
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    service = build_service(settings, jurisdiction)
    hub = Hub(queue_size=settings.console_queue)
    centers = [unit.id for unit in jurisdiction.centers()]
    source = RedisViewSource(settings.redis_url, centers, settings.redis_prefix)
    subscriber = RedisSubscriber(settings.redis_url, hub, source, settings.redis_prefix)
    services = Services(
        jurisdiction=jurisdiction,
        incidents=service,
        hub=hub,
        views=source,
        max_body_bytes=settings.max_body_bytes,
        resume_wait=settings.resume_wait,
        max_overflows=settings.max_overflows,
        background=[subscriber.run],
        on_shutdown=[source.close],
        mode="distributed",
    )
    return DistributedHub(settings, jurisdiction, service, hub, source, subscriber, services)


def build_relay(settings: Settings) -> Relay:
    """The relay for `linkage relay`; fails fast when PostgreSQL or Kafka is unreachable."""
    settings = settings.with_(store="postgres")
    check(settings, "postgres", "kafka")
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    service = build_service(settings, jurisdiction)
    position = RelayPosition(settings.postgres_dsn, settings.relay_name, settings.postgres_schema)
    return Relay(service.recorder, position, bootstrap=settings.kafka_bootstrap,
                 topic=settings.kafka_topic, partitions=settings.kafka_partitions,
                 replication=settings.kafka_replication,
                 idempotence=settings.kafka_idempotence, owner=service)


def build_worker(settings: Settings) -> faust.App:
    """The faust app for `linkage worker`; fails fast when Kafka or Redis is unreachable."""
    check(settings, "kafka", "redis")
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    fanout = RedisFanout(settings.redis_url, settings.redis_prefix, maxlen=settings.history_size)
    config = WorkerConfig(
        app_id=settings.worker_id,
        bootstrap=settings.kafka_bootstrap,
        topic=settings.kafka_topic,
        centers=frozenset(unit.id for unit in jurisdiction.centers()),
        partitions=settings.kafka_partitions,
        replication=settings.kafka_replication,
        datadir=settings.data_dir / "worker" / settings.worker_id,
        fetch_max_wait_ms=settings.worker_fetch_wait_ms,
        options={
            "broker_session_timeout": settings.worker_session_timeout,
            "broker_rebalance_timeout": settings.worker_session_timeout,
            "broker_heartbeat_interval": min(3.0, settings.worker_session_timeout / 5),
        },
    )
    return create_worker_app(config, fanout, on_broker_lost=_exit_broker_lost)


def _exit_broker_lost(reason: str) -> None:
    """Crash-only: a worker whose broker lost its records exits; its restart rebuilds from Kafka."""
    import logging
    import os

    logging.getLogger("infra.worker").error(
        "the broker lost records this worker had written (%s); exiting so that a restart "
        "rebuilds the views from the relay's topic", reason)
    logging.shutdown()
    os._exit(3)
