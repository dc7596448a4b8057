"""The composition root: builds every adapter from settings and wires them together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from functools import cache, partial
from pathlib import Path
from typing import Any

import faust
from starlette.applications import Starlette

from command_center.app import create_app
from command_center.auth import Auth
from command_center.disclosure import DisclosureSettings, DisclosureState
from command_center.hub import Hub, ViewSource
from command_center.incident_query import IncidentRows
from command_center.intake import Intake, RateLimiter
from command_center.ledger import Ledger
from command_center.metrics import Metrics
from command_center.open311_catalog import Open311
from command_center.registry_state import RegistryState, refuse_released
from command_center.throttle import FailureThrottle
from command_center.types import Services
from domain.access import AccessPolicy
from domain.alert_decision import AlertDecider
from domain.alert_service import AlertService
from domain.alert_store import AlertStore, Located, Outcome
from domain.application import IncidentService, changed_meanwhile
from domain.camera_alert import Observation
from domain.directory import Directory
from domain.incident import Actor
from domain.jurisdiction import Jurisdiction
from domain.order_service import SupervisionOrders
from domain.registry_service import RegistryService
from infra.distributed.generation import WorkerGeneration
from infra.distributed.generation import app_id as worker_app_id
from infra.distributed.redis_fanout import RedisFanout, RedisSubscriber, RedisViewSource
from infra.distributed.relay import Relay, RelayPosition
from infra.distributed.views_claim import ViewsClaim
from infra.ingest.alert_store import RecorderAlertStore
from infra.ingest.writer import WriterProcess
from infra.loaders.alert_rules import load_rules
from infra.loaders.assessment_weights import load_weights
from infra.loaders.cameras import DEFAULT_CAMERAS, load_cameras
from infra.loaders.directory import DEFAULT_DIRECTORY, load_directory
from infra.loaders.jurisdiction import load_jurisdiction
from infra.loaders.open311 import load_catalog
from infra.loaders.sla_policy import load_policy
from infra.outbound.wiring import build_deliverer
from infra.runner.embedded import EmbeddedRunner
from infra.runner.runner_process import RunnerMirror, runner_process
from infra.runner.sla_watcher import SlaWatcher
from infra.runner.view_snapshots import build_view_snapshots, snapshots_process
from infra.runtime.child_process import ChildProcess
from infra.runtime.operations import observe
from infra.runtime.preflight import check
from infra.security.api_keys import ApiKeys, poll_revoked
from infra.security.audit import audit_recorder
from infra.security.proofs import StoreProofs
from infra.security.seal_process import Forward, sealer_process
from infra.security.sealer import Sealer, build_sealer, load_signing_key
from infra.security.tokens import Tokens
from infra.settings import Settings
from infra.store.commits import SignalsCommits
from infra.store.group_commit import GroupCommits
from infra.store.incident_rows import PostgresIncidentRows
from infra.store.lease import Lease
from infra.store.log_readers import ReadNotifications, build_view_store, notification_reader
from infra.store.loop_save import LoopSaver
from infra.store.sqlite_recorder import LinkageSQLiteRecorder
from infra.store.view_store import ViewStore
from infra.store.write_turn import WriteTurn
from projections.assessment import Assessment
from projections.envelope import Envelope, from_stored, skip_to
from streams.app import EVENTS_PARTITIONS, WorkerConfig
from streams.app import create_app as create_worker_app

log = logging.getLogger(__name__)


def grid_centers(jurisdiction: Jurisdiction) -> Callable[[str], tuple[str, ...]]:
    """grid id -> its centers (township, district, city); KeyError for anything but a grid."""

    @cache  # the tree is immutable; one lookup per grid, not per command or alert
    def centers_for(grid: str) -> tuple[str, ...]:
        unit = jurisdiction.unit(grid)  # KeyError for an unknown id
        if unit.level != "grid":
            raise KeyError(grid)
        return jurisdiction.centers_for(grid)

    return centers_for


def grid_community(jurisdiction: Jurisdiction) -> Callable[[str], str | None]:
    """grid id -> its community (the first rung of the ladder above a grid worker), if any."""

    @cache
    def community_for(grid: str) -> str | None:
        unit = jurisdiction.get(grid)
        parent = jurisdiction.get(unit.parent) if unit and unit.parent else None
        return parent.id if parent is not None and parent.level == "community" else None

    return community_for


def build_service(settings: Settings, jurisdiction: Jurisdiction) -> IncidentService:
    # The SLA policy is checked at start: a bad file stops the process naming its line.
    return IncidentService(grid_centers(jurisdiction), env=settings.eventsourcing_env(),
                           policy=load_policy(settings.sla_policy),
                           community_for=grid_community(jurisdiction))


def build_alerts(settings: Settings, jurisdiction: Jurisdiction,
                 service: IncidentService) -> AlertService:
    """Camera registry and rules file, around the same event store; batches are stored in
    process (build_embedded may hand them to the ingest writer process instead)."""
    # The bundled sample registry fits the bundled tree; with another tree it keeps what fits.
    cameras = load_cameras(settings.cameras, jurisdiction,
                           strict=Path(settings.cameras) != DEFAULT_CAMERAS)
    store = RecorderAlertStore(service, AlertDecider(load_rules(settings.alert_rules)))
    return AlertService(service, store, store.stored, cameras.grid_of,
                        grid_centers(jurisdiction))


def build_directory(settings: Settings, jurisdiction: Jurisdiction) -> dict[str, Any]:
    """`Services(...)` keyword arguments for the console's directory: the directory file and the
    cameras' names, validated at start (a bad file names its entry)."""
    directory = load_directory(settings.directory, jurisdiction,
                               strict=Path(settings.directory) != DEFAULT_DIRECTORY)
    cameras = load_cameras(settings.cameras, jurisdiction,
                           strict=Path(settings.cameras) != DEFAULT_CAMERAS)
    return {"directory": directory,
            "cameras": [(c.id, c.name, c.grid) for c in cameras.cameras()]}


def build_intake(settings: Settings) -> Intake:
    return Intake(RateLimiter(settings.ingest_rate, settings.ingest_burst),
                  max_batch=settings.ingest_max_batch)


@dataclass
class Embedded:
    settings: Settings
    jurisdiction: Jurisdiction
    service: IncidentService
    views: ViewStore
    hub: Hub
    runner: EmbeddedRunner | None  # None: the runner folds in its child (`mirror`)
    services: Services
    tokens: Tokens | None = None
    keys: ApiKeys | None = None
    sealer: Sealer | None = None
    writer: WriterProcess | None = None
    mirror: RunnerMirror | None = None  # the views the runner's child sends (runner_process)

    def app(self) -> Starlette:
        return create_app(self.services)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.runner is not None:
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
        queue_size=settings.view_queue_size,
    )
    runner.catch_up()
    commits = commit_signal(service)
    source: EmbeddedRunner | RunnerMirror = runner
    child: ChildProcess | None = None
    if settings.runner_process:
        # Caught up here, before the server listens; from then on a child folds and this
        # process applies the deltas it sends (infra/runner/runner_process.py).
        mirror = RunnerMirror.taking(runner, hub)
        child = runner_process(settings, mirror)
        source, embedded_runner = mirror, None
        background: list[Callable[[], Awaitable[None]]] = [mirror.run]
        shutdown: list[Callable[[], Any]] = []
        if isinstance(service.recorder, LinkageSQLiteRecorder):
            service.recorder.remember_known = False  # nobody here folds what it commits
    else:
        embedded_runner, background, shutdown = runner, [runner.run], [runner.stop]
    commits.after_commit(source.wake)  # every commit in this process wakes the runner
    services, tokens, keys, sealer = build_services(
        settings, jurisdiction, service, hub, source, views,
        background=background, on_shutdown=shutdown, mode="embedded")
    if child is not None:
        count_restarts(services.metrics, child)
    writer = None
    if settings.ingest_process and services.alerts is not None:
        in_process = services.alerts.store
        assert isinstance(in_process, RecorderAlertStore)  # as build_alerts made it
        # The writer stores with the rules this process loaded and checked.
        writer = WriterProcess(settings, rules=in_process.decider.rules)
        if isinstance(service.recorder, LinkageSQLiteRecorder):  # turns with the writer
            service.recorder.turn = WriteTurn(settings.sqlite_path)
        services.alerts.store = Signalled(writer, commits.committed)
    observe(services, settings, service.recorder, runner=source, sealer=sealer, writer=writer)
    return Embedded(settings, jurisdiction, service, views, hub, embedded_runner, services,
                    tokens, keys, sealer, writer,
                    mirror=source if isinstance(source, RunnerMirror) else None)


def count_restarts(metrics: Metrics, child: ChildProcess) -> None:
    """`linkage_<name>_process_restarts_total`: the child's processes started after one exited."""
    metrics.counter(f"linkage_{child.name.replace('-', '_')}_process_restarts",
                    f"{child.name} processes started again after one exited",
                    partial(getattr, child, "restarts"))


def commit_signal(service: IncidentService) -> SignalsCommits:
    """The recorder's after-commit hook (infra/store/commits.py)."""
    recorder = service.recorder
    if not isinstance(recorder, SignalsCommits):
        raise TypeError(f"the event store's recorder {type(recorder).__name__} does not signal "
                        "commits; expected one of infra/store's recorders, as "
                        "Settings.eventsourcing_env() configures")
    return recorder


@dataclass
class Signalled:
    """An AlertStore whose commits happen in another process (the ingest writer), signalled here
    as this process's own are: its answer means the batch is committed, so the runner here has new
    events to read."""

    store: AlertStore
    committed: Callable[[], None]

    def ingest(self, feed: str, observations: Sequence[Observation], located: Located,
               actor: Actor) -> list[Outcome]:
        outcomes = self.store.ingest(feed, observations, located, actor)
        self.committed()
        return outcomes

    def exclusive(self) -> AbstractContextManager[object]:
        return self.store.exclusive()


def build_services(
    settings: Settings,
    jurisdiction: Jurisdiction,
    service: IncidentService,
    hub: Hub,
    views: ViewSource,
    incident_rows: IncidentRows,
    *,
    background: list[Callable[[], Awaitable[None]]],
    on_shutdown: list[Callable[[], Any]],
    mode: str,
) -> tuple[Services, Tokens, ApiKeys, Sealer]:
    """What the app needs in either mode: identity and access, the sealer, alert intake, the
    SLA watcher and (when enabled) MQTT, around a view source and its background tasks.
    The sealer and the SLA watcher are singletons: each runs only while this process holds
    its lease (on PostgreSQL one hub at a time, the others standing by; on SQLite always)."""
    tokens, keys, sealer, auth = build_security(settings, jurisdiction, service)

    sealing: ChildProcess | None = None
    if settings.seal_process:
        # On SQLite what this process commits reaches the child as committed (seal_process.py).
        forward = None
        if isinstance(service.recorder, LinkageSQLiteRecorder):
            forward = service.recorder.unsealed = Forward()
        sealing = sealer.process = sealer_process(settings, forward)

    async def seal() -> None:
        # The lease keeps other hubs' sealers idle; the tracking row lock stays as a backstop.
        if sealing is not None:
            await sealing.run()
        else:
            await sealer.run(settings.seal_interval,
                             checkpoint_seconds=settings.seal_checkpoint_seconds)

    snapshots = build_view_snapshots(settings, service.recorder,
                                     [unit.id for unit in jurisdiction.centers()])
    # Folded and stored in a child process of the lease holder (LINKAGE_SNAPSHOT_PROCESS); this
    # process's `snapshots` then only answers view?at= from what the child stored.
    snapshotting = snapshots_process(settings) if settings.snapshot_process else None
    orders = SupervisionOrders(service, jurisdiction.centers_for)
    # The assessment's days are local days in the SLA policy's calendar (else UTC+08:00).
    calendar = service.policy.calendar if service.policy is not None else None
    ledger = Ledger(ledger_reader(service),
                    Assessment(calendar.offset) if calendar is not None else Assessment())

    async def follow_ledger() -> None:
        # Keeps the assessment and the open orders warm and live; requests catch up too.
        while True:
            try:
                await asyncio.to_thread(ledger.catch_up)
            except Exception:
                log.exception("step-4 ledger catch-up failed; will retry")
            await asyncio.sleep(settings.ledger_interval)

    sla = SlaWatcher(service, incident_rows, jurisdiction.root.id, grace=settings.sla_grace,
                     interval=settings.sla_interval, orders=orders, ledger=ledger)
    services = Services(
        jurisdiction=jurisdiction,
        incidents=service,
        hub=hub,
        views=views,
        incident_rows=incident_rows,
        save=(LoopSaver(service, changed_meanwhile)
              if isinstance(service.recorder, GroupCommits) else None),
        max_body_bytes=settings.max_body_bytes,
        resume_wait=settings.resume_wait,
        max_overflows=settings.max_overflows,
        send_timeout=settings.ws_send_timeout,
        background=[*background, follow_ledger, Lease.for_settings(settings, "sealer").holding(seal),
                    Lease.for_settings(settings, "sla-watcher").holding(sla.run),
                    Lease.for_settings(settings, "view-snapshots").holding(
                        snapshotting.run if snapshotting is not None else snapshots.run)],
        on_shutdown=on_shutdown,
        mode=mode,
        alerts=build_alerts(settings, jurisdiction, service),
        intake=build_intake(settings),
        proofs=StoreProofs(settings, sealer.public_key, sealer.public_pem),
        time_travel=snapshots,
        **build_directory(settings, jurisdiction),
        orders=orders,
        ledger=ledger,
        weights=load_weights(settings.assessment_weights),
        **auth_hooks(auth, settings),
    )
    if services.directory is not None:
        services.registry = build_registry(service, jurisdiction, services.directory)
        services.authenticate = refuse_released(services.authenticate, services.registry)
        services.disclosure = build_disclosure(settings, service, jurisdiction,
                                               services.registry)
    for child in (sealing, snapshotting):
        if child is not None:
            count_restarts(services.metrics, child)
    services.open311 = Open311(load_catalog(settings.open311_services), keys.verify,
                               max_results=settings.open311_max_results)
    # Outbound alerts: one deliverer per event store (a lease), off the request path.
    deliverer = build_deliverer(settings, [u.id for u in jurisdiction.centers()],
                                type_reader(service),
                                lambda: service.recorder.max_notification_id() or 0,
                                services.metrics)
    services.background.append(Lease.for_settings(settings, "outbound").holding(deliverer.run))
    # Feed keys revoked elsewhere (the CLI, another hub) close this process's feed sockets.
    services.background.append(partial(poll_revoked, keys, services.revocations.update,
                                       settings.revocation_poll))
    if settings.mqtt:
        from infra.ingest.mqtt import MqttIngest

        services.background.append(MqttIngest(settings, services).run)
    return services, tokens, keys, sealer


SEED_ACTOR: Actor = {"user": "directory-seed", "role": "admin", "center": None}


def topic_reader(service: IncidentService, topics: Sequence[str]) -> ReadNotifications:
    """Envelopes of these stored topics after a position, read from the table (not the
    runner's in-memory hand-over, which is the runner's alone). Filtered in SQL, up to the
    newest notification, so events of other topics (a burst of alerts) are neither returned
    nor decoded: a batch shorter than the limit ends with a `Skip.Skip` envelope at the newest
    notification id, which moves a reader's position past them."""
    recorder = service.recorder
    topics = list(topics)
    if not topics:  # the recorders read every topic when given none
        raise ValueError("topic_reader needs at least one topic")

    def read(after: int, limit: int) -> list[Envelope]:
        newest = recorder.max_notification_id() or 0
        if newest <= after:
            return []
        notifications = recorder.select_notifications(start=after + 1, limit=limit,
                                                      stop=newest, topics=topics)
        found = [from_stored(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                 for n in notifications]
        if len(found) < limit:  # nothing more up to `newest`: skip ahead to it
            found.append(skip_to(newest))
        return found

    return read


# The aggregates whose events other readers filter by type ("<Aggregate>.<Event>").
def _aggregates() -> dict[str, type]:
    from domain.camera_alert import CameraAlert
    from domain.incident import Incident
    from domain.supervision_order import SupervisionOrder

    return {cls.__name__: cls for cls in (Incident, CameraAlert, SupervisionOrder)}


def event_topics(*aggregates: type) -> list[str]:
    """The stored topics of every event class of these aggregates."""
    return [f"{cls.__module__}:{name.__qualname__}" for cls in aggregates
            for name in vars(cls).values() if isinstance(name, type) and hasattr(name, "mutate")]


def type_topic(event_type: str) -> str:
    """The stored topic of an event type "<Aggregate>.<Event>" (KeyError if there is none)."""
    aggregate, _, name = event_type.partition(".")
    cls = _aggregates()[aggregate]
    event = vars(cls).get(name)
    if not (isinstance(event, type) and hasattr(event, "mutate")):
        raise KeyError(event_type)
    return f"{cls.__module__}:{event.__qualname__}"


def type_reader(service: IncidentService) -> Callable[[int, int, Collection[str]],
                                                      list[Envelope]]:
    """`topic_reader` for the event types a caller names at each read (the deliverer's)."""
    readers: dict[frozenset[str], ReadNotifications] = {}

    def read(after: int, limit: int, types: Collection[str]) -> list[Envelope]:
        key = frozenset(types)
        reader = readers.get(key)
        if reader is None:
            reader = readers[key] = topic_reader(service, sorted(type_topic(t) for t in key))
        return reader(after, limit)

    return read


def ledger_reader(service: IncidentService) -> ReadNotifications:
    """The step-4 ledger's reader: the incidents' and supervision orders' events only (the
    assessment and the open orders fold nothing else)."""
    from domain.incident import Incident
    from domain.supervision_order import SupervisionOrder

    return topic_reader(service, event_topics(Incident, SupervisionOrder))


def registry_reader(service: IncidentService,
                    topics: Sequence[str] | None = None) -> ReadNotifications:
    """Envelopes of the registry's and the dispatch events after a position (`topic_reader`),
    so alerts cost the registry nothing."""
    return topic_reader(service, topics if topics is not None else recorder_topics(service))


def recorder_topics(service: IncidentService) -> list[str]:
    """The stored topics of the events the registry's projection folds."""
    from domain import incident, registry

    topics = event_topics(registry.Party, registry.Worker, registry.Resident)
    for name in ("Dispatched", "Transferred", "Returned", "Acknowledged", "Resolved", "Closed",
                 "Rejected", "MarkedDuplicate"):
        topics.append(f"{incident.__name__}:Incident.{name}")
    return topics


def build_registry(service: IncidentService, jurisdiction: Jurisdiction,
                   directory: Directory) -> RegistryState:
    """The registry's projection, with the directory file's parties and grid workers seeded
    as events when the store does not have them yet (the file is the registry's seed)."""
    registry_service = RegistryService(service, jurisdiction)
    state = RegistryState(registry_reader(service), registry_service)
    current = state.current()
    seeded = registry_service.seed(directory, current.parties, current.workers, SEED_ACTOR)
    if seeded:
        logging.getLogger(__name__).info("registry: seeded %d parties and grid workers from "
                                         "the directory file", seeded)
    return state


DISCLOSED_EVENTS = ("Reported", "Resolved", "ReturnVisited", "Reopened", "Rejected",
                    "MarkedDuplicate", "Closed")


def build_disclosure(settings: Settings, service: IncidentService, jurisdiction: Jurisdiction,
                     registry: RegistryState) -> DisclosureState:
    """The public disclosure's read model and its settings (delay, opt-out, rate, cache)."""
    from domain import incident

    topics = [f"{incident.__name__}:Incident.{name}" for name in DISCLOSED_EVENTS]
    return DisclosureState(
        registry_reader(service, topics), jurisdiction, registry.names,
        DisclosureSettings(delay=timedelta(hours=settings.disclosure_delay_hours),
                           opt_out=settings.disclosure_opt_out, rate=settings.disclosure_rate,
                           burst=max(1.0, settings.disclosure_rate * 10),
                           cache_seconds=settings.disclosure_cache))


def build_auth(settings: Settings, jurisdiction: Jurisdiction, service: IncidentService,
               tokens: Tokens, keys: ApiKeys) -> Auth:
    """The access hooks: verified tokens and keys, the policy, the audit trail."""
    return Auth(
        verify_token=tokens.verify,
        verify_key=keys.verify,
        policy=AccessPolicy(jurisdiction),
        record=audit_recorder(service),
        origins=tuple(o.rstrip("/") for o in settings.ws_origins),
        allow_missing_origin=settings.ws_allow_missing_origin,
        key_id=keys.key_id,
        throttle=FailureThrottle(settings.auth_fail_rate, settings.auth_fail_burst),
    )


def auth_hooks(auth: Auth, settings: Settings) -> dict[str, Any]:
    """`Services(...)` keyword arguments for identity and access; every Services needs them."""
    return {
        "authenticate": auth.authenticate,
        "authenticate_feed": auth.authenticate_feed,
        "authorize": auth.authorize,
        "check_origin": auth.check_origin,
        "ws_rate": settings.ws_rate,
        "ws_burst": settings.ws_burst,
        "throttle": auth.throttle,
    }


def build_security(
    settings: Settings, jurisdiction: Jurisdiction, service: IncidentService
) -> tuple[Tokens, ApiKeys, Sealer, Auth]:
    """Tokens, feed keys, the sealer and the access hooks, from settings."""
    tokens = Tokens(settings, jurisdiction)
    keys = ApiKeys.for_settings(settings)
    sealer = build_sealer(settings, service.recorder)
    return tokens, keys, sealer, build_auth(settings, jurisdiction, service, tokens, keys)


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
    tokens: Tokens | None = None
    keys: ApiKeys | None = None
    sealer: Sealer | None = None

    def app(self) -> Starlette:
        return create_app(self.services)

    def close(self) -> None:
        self.service.close()


def shared_keys(settings: Settings) -> None:
    """The keys every distributed process shares load from settings; else a ValueError that
    names the setting (before any service is touched)."""
    Tokens(settings.with_(keys_from_settings=True))
    load_signing_key(settings.with_(keys_from_settings=True))


def build_hub(settings: Settings) -> DistributedHub:
    """A hub for `linkage serve --mode distributed`; fails fast when a key is not configured or
    a service is unreachable."""
    settings = settings.with_(store="postgres", keys_from_settings=True)
    shared_keys(settings)
    check(settings, "postgres", "redis")
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    service = build_service(settings, jurisdiction)
    hub = Hub(queue_size=settings.console_queue)
    centers = [unit.id for unit in jurisdiction.centers()]
    source = RedisViewSource(settings.redis_url, centers, settings.redis_prefix)
    subscriber = RedisSubscriber(settings.redis_url, hub, source, settings.redis_prefix)
    rows = PostgresIncidentRows(settings.postgres_dsn, settings.postgres_schema)
    services, tokens, keys, sealer = build_services(
        settings, jurisdiction, service, hub, source, rows,
        background=[subscriber.run], on_shutdown=[source.close, rows.close], mode="distributed")
    observe(services, settings, service.recorder, sealer=sealer)
    return DistributedHub(settings, jurisdiction, service, hub, source, subscriber, services,
                          tokens, keys, sealer)


def build_relay(settings: Settings) -> Relay:
    """The relay for `linkage relay`; fails fast when PostgreSQL or Kafka is unreachable."""
    settings = settings.with_(store="postgres")
    check(settings, "postgres", "kafka")
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    service = build_service(settings, jurisdiction)
    position = RelayPosition(settings.postgres_dsn, settings.relay_name, settings.postgres_schema)
    return Relay(service.recorder, position, bootstrap=settings.kafka_bootstrap,
                 topic=settings.kafka_topic, partitions=EVENTS_PARTITIONS,
                 replication=settings.kafka_replication,
                 idempotence=settings.kafka_idempotence, owner=service)


def relay_lease(settings: Settings) -> Lease:
    """One relay per event store (and relay name) at a time; the others stand by."""
    return Lease.for_settings(settings.with_(store="postgres"), f"relay:{settings.relay_name}")


def build_worker(settings: Settings) -> faust.App:
    """The faust app for `linkage worker`; fails fast when Kafka, Redis or PostgreSQL (the
    per-incident read model) is unreachable."""
    check(settings, "kafka", "redis", "postgres")
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    claim = ViewsClaim(settings.redis_url, settings.redis_prefix, settings.worker_id,
                       ttl=settings.worker_claim_ttl, on_lost=_exit_claim_lost)
    claim.take()  # ViewsClaimed, naming the other group, when it has them
    fanout = RedisFanout(settings.redis_url, settings.redis_prefix, maxlen=settings.history_size,
                         claim=claim)
    rows = PostgresIncidentRows(settings.postgres_dsn, settings.postgres_schema)
    generation = current_generation(settings)
    group = worker_app_id(settings.worker_id, generation)
    config = WorkerConfig(
        app_id=group,
        bootstrap=settings.kafka_bootstrap,
        topic=settings.kafka_topic,
        centers=frozenset(unit.id for unit in jurisdiction.centers()),
        partitions=settings.kafka_partitions,
        replication=settings.kafka_replication,
        datadir=settings.data_dir / "worker" / group,
        fetch_max_wait_ms=settings.worker_fetch_wait_ms,
        queue_size=settings.view_queue_size,
        options={
            "broker_session_timeout": settings.worker_session_timeout,
            "broker_rebalance_timeout": settings.worker_session_timeout,
            "broker_heartbeat_interval": min(3.0, settings.worker_session_timeout / 5),
        },
    )
    claim.keep_renewing()
    return create_worker_app(config, fanout, rows=rows,
                             on_broker_lost=lambda reason: _exit_broker_lost(
                                 settings, generation, reason))


def current_generation(settings: Settings) -> int:
    """The worker group's generation stored in PostgreSQL (`linkage replay --mode distributed`
    and a broker that lost its records start a new one)."""
    generations = WorkerGeneration(settings.postgres_dsn, settings.postgres_schema)
    try:
        return generations.load(settings.worker_id)
    finally:
        generations.close()


def current_app_id(settings: Settings) -> str:
    """The worker group's faust app id: LINKAGE_WORKER_ID at its current generation."""
    return worker_app_id(settings.worker_id, current_generation(settings))


def _exit_broker_lost(settings: Settings, generation: int, reason: str) -> None:
    """Crash-only: a worker whose broker lost its records moves its group to the next
    generation and exits; the restart folds the relay's topic from its first record into new
    tables, under new epochs that consoles see once they caught up."""
    import logging
    import os

    now: int | str = "?"
    try:
        generations = WorkerGeneration(settings.postgres_dsn, settings.postgres_schema)
        try:
            now = generations.advance(settings.worker_id, generation)
        finally:
            generations.close()
    except Exception:  # exit all the same: a worker on a broken log must not go on writing
        logging.getLogger("infra.worker").exception("could not move the worker group on")
    logging.getLogger("infra.worker").error(
        "the broker lost records this worker had written (%s); worker group generation %d -> "
        "%s; exiting so that a restart rebuilds the views from the relay's topic",
        reason, generation, now)
    logging.shutdown()
    os._exit(3)


def _exit_claim_lost(reason: str) -> None:
    """Another worker group took the views (this one stalled past the TTL): stop writing."""
    import logging
    import os

    logging.getLogger("infra.worker").error("%s; exiting", reason)
    logging.shutdown()
    os._exit(4)
