"""Settings: every address and limit, from LINKAGE_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from infra.loaders.alert_rules import DEFAULT_RULES
from infra.loaders.assessment_weights import DEFAULT_WEIGHTS_FILE
from infra.loaders.cameras import DEFAULT_CAMERAS
from infra.loaders.directory import DEFAULT_DIRECTORY
from infra.loaders.jurisdiction import DEFAULT_JURISDICTION
from infra.loaders.open311 import DEFAULT_OPEN311_SERVICES
from infra.loaders.sla_policy import DEFAULT_POLICY


def _env(name: str, default: str) -> str:
    return os.environ.get(f"LINKAGE_{name}", default)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(_env("DATA_DIR", "var")))
    store: str = field(default_factory=lambda: _env("STORE", "sqlite"))  # sqlite | postgres
    postgres_dsn: str = field(
        default_factory=lambda: _env("POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
    )
    postgres_schema: str = field(default_factory=lambda: _env("POSTGRES_SCHEMA", ""))
    jurisdiction: Path = field(
        default_factory=lambda: Path(_env("JURISDICTION", str(DEFAULT_JURISDICTION)))
    )
    host: str = field(default_factory=lambda: _env("HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("PORT", "8000")))
    max_body_bytes: int = field(default_factory=lambda: int(_env("MAX_BODY_BYTES", str(1 << 20))))
    console_queue: int = field(default_factory=lambda: int(_env("CONSOLE_QUEUE", "512")))
    resume_wait: float = field(default_factory=lambda: float(_env("RESUME_WAIT", "1.0")))
    history_size: int = field(default_factory=lambda: int(_env("HISTORY_SIZE", "1000")))
    # Open cases a center's view holds (its urgency queue); the rest are GET /api/incidents.
    view_queue_size: int = field(default_factory=lambda: int(_env("VIEW_QUEUE_SIZE", "200")))
    # -- operations (README "Operations: logs, health, metrics") --
    log_format: str = field(default_factory=lambda: _env("LOG_FORMAT", "text"))  # text | json
    # uvicorn's line per request; `make run` turns it off (LINKAGE_ACCESS_LOG=false)
    access_log: bool = field(
        default_factory=lambda: _env("ACCESS_LOG", "true").lower() in ("1", "true", "yes"))
    # HTTP requests counted by route and status and timed (the command path's only metrics cost)
    http_metrics: bool = field(
        default_factory=lambda: _env("HTTP_METRICS", "true").lower() in ("1", "true", "yes"))
    # /metrics on a port of its own (loopback) instead of the app's; 0: on the app's port
    metrics_port: int = field(default_factory=lambda: int(_env("METRICS_PORT", "0")))
    # ...and, when set, /metrics on the app's port asks for `Authorization: Bearer <this>`
    metrics_token: str = field(default_factory=lambda: _env("METRICS_TOKEN", ""))
    # /readyz: the runner may be at most this many notifications behind the store
    ready_max_lag: int = field(default_factory=lambda: int(_env("READY_MAX_LAG", "1000")))
    # Open311 GeoReport v2: the service catalog (README "Open311")
    open311_services: Path = field(
        default_factory=lambda: Path(_env("OPEN311_SERVICES", str(DEFAULT_OPEN311_SERVICES))))
    open311_max_results: int = field(
        default_factory=lambda: int(_env("OPEN311_MAX_RESULTS", "200")))
    # Outbound alerts (README "Outbound alerts"): subscriptions file (JSON; `linkage outbound
    # check`), CAP sender id, and how deliveries are tried
    outbound_file: str = field(default_factory=lambda: _env("OUTBOUND_FILE", ""))
    outbound_sender: str = field(
        default_factory=lambda: _env("OUTBOUND_SENDER", "linkage@command-center.local"))
    outbound_poll: float = field(default_factory=lambda: float(_env("OUTBOUND_POLL", "0.5")))
    outbound_timeout: float = field(default_factory=lambda: float(_env("OUTBOUND_TIMEOUT", "5")))
    outbound_max_attempts: int = field(
        default_factory=lambda: int(_env("OUTBOUND_MAX_ATTEMPTS", "12")))
    outbound_backoff: float = field(default_factory=lambda: float(_env("OUTBOUND_BACKOFF", "1")))
    outbound_max_backoff: float = field(
        default_factory=lambda: float(_env("OUTBOUND_MAX_BACKOFF", "300")))
    # `linkage serve --demo` prints its login links again this often (seconds; 0: once)
    login_reminder: float = field(default_factory=lambda: float(_env("LOGIN_REMINDER", "300")))
    # -- security and audit (see README "Security and audit") --
    # Algorithms accepted for bearer tokens; never taken from the token itself.
    jwt_algorithms: tuple[str, ...] = field(
        default_factory=lambda: _csv(_env("JWT_ALGORITHMS", "HS256"))
    )
    jwt_audience: str = field(default_factory=lambda: _env("JWT_AUDIENCE", "linkage"))
    jwt_issuer: str = field(default_factory=lambda: _env("JWT_ISSUER", "linkage-local"))
    # HS256 secret for local use; generated under data_dir (mode 0600) when empty.
    jwt_secret: str = field(default_factory=lambda: _env("JWT_SECRET", ""))
    # ...or a file holding it (what `linkage up` hands its children).
    jwt_secret_file: str = field(default_factory=lambda: _env("JWT_SECRET_FILE", ""))
    # Distributed mode: the JWT secret and the seal key come from these settings only, and are
    # never generated under data_dir (hubs with data dirs of their own would each make theirs).
    # Set by the distributed entry points, not by the environment.
    keys_from_settings: bool = False
    # PEM public keys of an identity provider.
    jwt_rs256_public_key: str = field(default_factory=lambda: _env("JWT_RS256_PUBLIC_KEY", ""))
    jwt_eddsa_public_key: str = field(default_factory=lambda: _env("JWT_EDDSA_PUBLIC_KEY", ""))
    token_ttl: int = field(default_factory=lambda: int(_env("TOKEN_TTL", str(8 * 3600))))
    # Allowed websocket Origins ("scheme://host:port"); empty means the server's own host.
    ws_origins: tuple[str, ...] = field(default_factory=lambda: _csv(_env("WS_ORIGINS", "")))
    ws_allow_missing_origin: bool = field(
        default_factory=lambda: _env("WS_ALLOW_MISSING_ORIGIN", "false").lower() in ("1", "true")
    )
    ws_max_size: int = field(default_factory=lambda: int(_env("WS_MAX_SIZE", "65536")))
    ws_rate: float = field(default_factory=lambda: float(_env("WS_RATE", "10")))  # msgs/s
    ws_burst: int = field(default_factory=lambda: int(_env("WS_BURST", "20")))
    # A console send (or close) that has not completed in this many seconds: the console is
    # not reading; it is closed (4008) or, when even a close cannot be written, reset.
    ws_send_timeout: float = field(default_factory=lambda: float(_env("WS_SEND_TIMEOUT", "10")))
    # Websocket keepalive: a ping every interval; no pong within the timeout closes with 1011.
    ws_ping_interval: float = field(
        default_factory=lambda: float(_env("WS_PING_INTERVAL", "20")))
    ws_ping_timeout: float = field(default_factory=lambda: float(_env("WS_PING_TIMEOUT", "20")))
    # Kernel send buffer of each websocket in bytes (0: the kernel's autotuning, up to MiBs).
    ws_send_buffer: int = field(default_factory=lambda: int(_env("WS_SEND_BUFFER", "0")))
    # Failed authentications an address may make (burst), refilled at this rate a second; then
    # its requests get 429 before any token is decoded.
    auth_fail_burst: int = field(default_factory=lambda: int(_env("AUTH_FAIL_BURST", "20")))
    auth_fail_rate: float = field(default_factory=lambda: float(_env("AUTH_FAIL_RATE", "1")))
    # Seconds between reads of the revoked feed keys (open feed sockets close within that).
    revocation_poll: float = field(default_factory=lambda: float(_env("REVOCATION_POLL", "1")))
    seal_checkpoint_every: int = field(
        default_factory=lambda: int(_env("SEAL_CHECKPOINT_EVERY", "100"))
    )
    seal_key_path: str = field(default_factory=lambda: _env("SEAL_KEY", ""))  # Ed25519 PEM
    seal_interval: float = field(default_factory=lambda: float(_env("SEAL_INTERVAL", "1.0")))
    # The sealer runs in a child process of its own while this process holds the sealer's lease
    # (infra/security/seal_process.py): its hashing and writes share no GIL with HTTP requests.
    seal_process: bool = field(
        default_factory=lambda: _env("SEAL_PROCESS", "true").lower() in ("1", "true", "yes")
    )
    # Likewise the time-travel snapshots (infra/runner/view_snapshots.py), under their lease.
    snapshot_process: bool = field(
        default_factory=lambda: _env("SNAPSHOT_PROCESS", "true").lower() in ("1", "true", "yes")
    )
    # Embedded mode folds the views in a child process of the server (the projection runner,
    # infra/runner/runner_process.py); the server applies the deltas it sends back.
    runner_process: bool = field(
        default_factory=lambda: _env("RUNNER_PROCESS", "true").lower() in ("1", "true", "yes")
    )
    # ...and the head is signed at least this often while events come (quiet stores too)
    seal_checkpoint_seconds: float = field(
        default_factory=lambda: float(_env("SEAL_CHECKPOINT_SECONDS", "300"))
    )
    # Outside the data dir: every signed head is appended to it (README "Tamper-evident history").
    seal_witness: str = field(default_factory=lambda: _env("SEAL_WITNESS", ""))
    # Time travel (issue #18): a snapshot of each center at a signed tree head every this many
    # notifications, at most VIEW_SNAPSHOT_KEEP per center (README "Auditor replay").
    view_snapshot_every: int = field(
        default_factory=lambda: int(_env("VIEW_SNAPSHOT_EVERY", "1000"))
    )
    view_snapshot_keep: int = field(default_factory=lambda: int(_env("VIEW_SNAPSHOT_KEEP", "1024")))
    # An overdue case escalates one level when due passes, and again every grace period after.
    sla_grace: timedelta = field(
        default_factory=lambda: timedelta(seconds=float(_env("SLA_GRACE_SECONDS", "3600")))
    )
    sla_interval: float = field(default_factory=lambda: float(_env("SLA_INTERVAL", "30")))
    # The SLA policy file: time allowed per step by category x severity (`linkage sla check`).
    sla_policy: Path = field(default_factory=lambda: Path(_env("SLA_POLICY", str(DEFAULT_POLICY))))
    # Seconds between the step-4 ledger's catch-ups (assessment, open supervision orders).
    ledger_interval: float = field(default_factory=lambda: float(_env("LEDGER_INTERVAL", "1")))
    # The assessment's composite-score weights (`linkage assessment check`).
    assessment_weights: Path = field(
        default_factory=lambda: Path(_env("ASSESSMENT_WEIGHTS", str(DEFAULT_WEIGHTS_FILE))))
    # Camera and sensor alerts
    cameras: Path = field(default_factory=lambda: Path(_env("CAMERAS", str(DEFAULT_CAMERAS))))
    # Dispatch targets (departments, parties, grid workers) and role names the console shows
    directory: Path = field(
        default_factory=lambda: Path(_env("DIRECTORY", str(DEFAULT_DIRECTORY)))
    )
    alert_rules: Path = field(default_factory=lambda: Path(_env("ALERT_RULES", str(DEFAULT_RULES))))
    # Public disclosure (GET /public, /api/public/*): hours a closed case waits before it is
    # published, categories never published, requests per second per address, cache seconds
    disclosure_delay_hours: float = field(
        default_factory=lambda: float(_env("DISCLOSURE_DELAY_HOURS", "72")))
    disclosure_opt_out: tuple[str, ...] = field(
        default_factory=lambda: _csv(_env("DISCLOSURE_OPT_OUT", "dispute")))
    disclosure_rate: float = field(default_factory=lambda: float(_env("DISCLOSURE_RATE", "2")))
    disclosure_cache: float = field(default_factory=lambda: float(_env("DISCLOSURE_CACHE", "30")))
    ingest_rate: float = field(default_factory=lambda: float(_env("INGEST_RATE", "50000")))
    ingest_burst: float = field(default_factory=lambda: float(_env("INGEST_BURST", "100000")))
    ingest_max_batch: int = field(default_factory=lambda: int(_env("INGEST_MAX_BATCH", "1000")))
    # How often a thread holding the GIL hands it to a waiting one (Python's default: 5 ms). The
    # server's event loop and its commit thread wait for it behind the runner's fold, the sealer
    # and the snapshots at every return from SQLite or the socket; `linkage serve` sets this.
    switch_interval_ms: float = field(
        default_factory=lambda: float(_env("SWITCH_INTERVAL_MS", "5")))
    # Embedded mode stores alert batches in a writer process of its own (see README "Ingest
    # writer process"): the HTTP process keeps folding views and sealing on its own core.
    ingest_process: bool = field(
        default_factory=lambda: _env("INGEST_PROCESS", "true").lower() in ("1", "true", "yes")
    )
    # Seconds a request waits for the writer before answering 503 and restarting it.
    ingest_timeout: float = field(default_factory=lambda: float(_env("INGEST_TIMEOUT", "60")))
    mqtt: bool = field(default_factory=lambda: _env("MQTT", "0").lower() in ("1", "true", "yes"))
    mqtt_url: str = field(default_factory=lambda: _env("MQTT_URL", "mqtt://127.0.0.1:1883"))
    mqtt_topic: str = field(default_factory=lambda: _env("MQTT_TOPIC", "frigate/events"))
    mqtt_feed: str = field(default_factory=lambda: _env("MQTT_FEED", "frigate"))
    # distributed mode
    kafka_bootstrap: str = field(default_factory=lambda: _env("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    kafka_topic: str = field(default_factory=lambda: _env("KAFKA_TOPIC", "linkage.events"))
    kafka_partitions: int = field(default_factory=lambda: int(_env("KAFKA_PARTITIONS", "4")))
    kafka_replication: int = field(default_factory=lambda: int(_env("KAFKA_REPLICATION", "1")))
    # Idempotent producer: on for Apache Kafka; Tansu 0.6 (memory) rejects aiokafka's InitProducerId.
    kafka_idempotence: bool = field(
        default_factory=lambda: _env("KAFKA_IDEMPOTENCE", "true").lower() in ("1", "true", "yes")
    )
    redis_url: str = field(default_factory=lambda: _env("REDIS_URL", "redis://127.0.0.1:6379/0"))
    redis_prefix: str = field(default_factory=lambda: _env("REDIS_PREFIX", "linkage"))
    worker_id: str = field(default_factory=lambda: _env("WORKER_ID", "linkage-worker"))
    # The worker group's claim on the views under redis_prefix lapses this long after its
    # last renewal (renewed every third of it); another group may take them only then.
    worker_claim_ttl: float = field(default_factory=lambda: float(_env("WORKER_CLAIM_TTL", "30")))
    # How long the group waits for a silent worker (faust session and rebalance timeouts).
    worker_session_timeout: float = field(
        default_factory=lambda: float(_env("WORKER_SESSION_TIMEOUT", "10"))
    )
    worker_fetch_wait_ms: int = field(
        default_factory=lambda: int(_env("WORKER_FETCH_WAIT_MS", "20"))
    )
    relay_name: str = field(default_factory=lambda: _env("RELAY_NAME", "linkage-relay"))
    relay_metrics_port: int = field(default_factory=lambda: int(_env("RELAY_METRICS_PORT", "9108")))
    # /metrics of `linkage worker` (loopback; 0: off, the default: workers share hosts)
    worker_metrics_port: int = field(
        default_factory=lambda: int(_env("WORKER_METRICS_PORT", "0")))
    connect_timeout: float = field(default_factory=lambda: float(_env("CONNECT_TIMEOUT", "5")))
    max_overflows: int = field(default_factory=lambda: int(_env("MAX_OVERFLOWS", "3")))

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "events.db"

    @property
    def views_path(self) -> Path:
        return self.data_dir / "views.db"

    @property
    def snapshots_path(self) -> Path:
        """The time-travel view snapshots (SQLite): a file of their own, so that writing them
        never holds the event store's write turn, which officers' commands wait for."""
        return self.data_dir / "snapshots.db"

    @property
    def keys_path(self) -> Path:
        """SQLite file of feed API keys (embedded mode)."""
        return self.data_dir / "api_keys.db"

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment eventsourcing's Application reads its persistence from."""
        if self.store == "sqlite":
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": "10",
                "APPLICATION_RECORDER_TOPIC": "infra.store.sqlite_recorder:LinkageSQLiteRecorder",
            }
        if self.store == "postgres":
            from psycopg.conninfo import conninfo_to_dict

            info = conninfo_to_dict(self.postgres_dsn)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
                "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
                "POSTGRES_PORT": str(info.get("port", "5432")),
                "POSTGRES_USER": str(info.get("user", "postgres")),
                "POSTGRES_PASSWORD": str(info.get("password", "")),
                "POSTGRES_CONNECT_TIMEOUT": "5",
                "APPLICATION_RECORDER_TOPIC":
                    "infra.store.postgres_recorder:LinkagePostgresRecorder",
                **({"POSTGRES_SCHEMA": self.postgres_schema} if self.postgres_schema else {}),
            }
        raise ValueError(f"LINKAGE_STORE must be 'sqlite' or 'postgres'; got {self.store!r}")
