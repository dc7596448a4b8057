"""What a process tells its operators: the /readyz checks and the scraped gauges of the parts the
composition root built (event store, runner, sealer, ingest writer, Redis, Kafka).

The parts are duck-typed (`Protocol`s below): this room sits under the jobs that own them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from command_center.metrics import watch
from command_center.types import ReadyCheck, Services
from infra.runtime.preflight import check_kafka_async, check_redis
from infra.settings import Settings


class Recorder(Protocol):
    def max_notification_id(self) -> int | None: ...


class Follower(Protocol):
    """Something that follows the notification log up to `position` (the embedded runner)."""

    position: int


class Sealed(Protocol):
    def position(self) -> int: ...


class Writer(Protocol):
    restarts: int

    def alive(self) -> bool: ...

    def in_flight(self) -> int: ...


def _head(recorder: Recorder) -> int:
    return recorder.max_notification_id() or 0


def store_check(recorder: Recorder) -> ReadyCheck:
    async def check() -> tuple[bool, str]:
        head = await asyncio.to_thread(_head, recorder)
        return True, f"event store answers; {head} events"
    return check


def lag_check(recorder: Recorder, runner: Follower, bound: int) -> ReadyCheck:
    async def check() -> tuple[bool, str]:
        head = await asyncio.to_thread(_head, recorder)
        lag = max(0, head - runner.position)
        if lag > bound:
            return False, f"the runner is {lag} notifications behind the store (bound {bound})"
        return True, f"the runner is {lag} notifications behind the store (bound {bound})"
    return check


def writer_check(writer: Writer) -> ReadyCheck:
    async def check() -> tuple[bool, str]:
        if writer.alive():
            return True, f"ingest writer alive; {writer.restarts} restarts"
        return False, f"ingest writer not running (being restarted); {writer.restarts} restarts"
    return check


def redis_check(url: str) -> ReadyCheck:
    async def check() -> tuple[bool, str]:
        await asyncio.to_thread(check_redis, url, 2.0)
        return True, "Redis answers"
    return check


def kafka_check(bootstrap: str) -> ReadyCheck:
    async def check() -> tuple[bool, str]:
        await check_kafka_async(bootstrap, 2.0)
        return True, f"Kafka at {bootstrap} answers"
    return check


def observe(services: Services, settings: Settings, recorder: Any, *,
            runner: Follower | None = None, sealer: Sealed | None = None,
            writer: Writer | None = None) -> None:
    """Register the readiness checks and the gauges of one process's parts on its services."""
    services.metrics_port = settings.metrics_port
    services.http_metrics = settings.http_metrics
    services.metrics_token = settings.metrics_token
    metrics = services.metrics
    watch(metrics, services)
    services.readiness["store"] = store_check(recorder)
    metrics.counter("linkage_events_appended", "Events this process committed to the store",
                    lambda: float(getattr(recorder, "appended", 0)))
    metrics.gauge("linkage_event_store_head", "Highest notification id in the event store",
                  lambda: _head(recorder))
    if runner is not None:
        services.readiness["runner"] = lag_check(recorder, runner, settings.ready_max_lag)
        metrics.gauge("linkage_runner_position", "Last notification id the runner folded",
                      lambda: runner.position)
        metrics.gauge("linkage_runner_lag", "Notifications the runner is behind the store",
                      lambda: max(0, _head(recorder) - runner.position))
    if sealer is not None:
        metrics.gauge("linkage_sealer_position", "Last notification id sealed into the hash chain",
                      sealer.position)
        metrics.gauge("linkage_sealer_lag", "Notifications not yet sealed into the hash chain",
                      lambda: max(0, _head(recorder) - sealer.position()))
    if writer is not None:
        services.readiness["ingest_writer"] = writer_check(writer)
        metrics.gauge("linkage_ingest_writer_queue", "Alert batches in flight to the writer",
                      writer.in_flight)
        metrics.counter("linkage_ingest_writer_restarts", "Ingest writer processes replaced",
                        lambda: writer.restarts)
        metrics.gauge("linkage_ingest_writer_alive", "1 while the ingest writer runs",
                      lambda: 1.0 if writer.alive() else 0.0)
    if services.mode == "distributed":
        services.readiness["redis"] = redis_check(settings.redis_url)
        services.readiness["kafka"] = kafka_check(settings.kafka_bootstrap)
