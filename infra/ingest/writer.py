"""The ingest writer: embedded mode stores alert batches in a process of its own.

`linkage serve` is one Python process, so one core runs Python at a time: the alert ingest
(building and inserting events), folding the console views and sealing the audit chain took
turns under one GIL, and a burst of alerts used one of this machine's two cores. The writer
process takes the first: the HTTP process decodes, authenticates, rate-limits and locates a
batch (every 4xx is decided there), sends the located observations here, and answers the feed
with the outcomes once the batch is committed. Its runner reads the new events from the store,
as it reads anyone's.

Wire: msgpack over `multiprocessing` pipes, a few of them so that the next batch is already
waiting while one is stored. Request: (feed, observations, located, actor, API key id). Reply:
`Revoked` (the key was revoked since the HTTP process authenticated it: 401), `Stored`
(the outcomes), `Refused` (a domain error: its class by name, its message and attributes,
rebuilt into the same class here) or `Failed` (anything else, logged by the writer: the batch
gets IngestUnavailable). The writer stores one batch at a time with the in-process adapter
(infra/ingest/alert_store.py); SQLite serializes it with the HTTP process's own writes
(officers' commands), and eventsourcing's version check settles any race.

If the writer dies or stops answering, the batches in flight get `IngestUnavailable` (503 with
Retry-After; the MQTT subscriber does not ack, so the broker redelivers), and the next batch
starts a new writer. A writer found dead while idle is replaced before a batch is sent to it (no
503). Writers that die before answering anything (they cannot start) are retried after 1, 2, 4,
... 30 s, and batches meanwhile get 503 with that Retry-After. Nothing unacknowledged is lost,
and nothing is stored twice: ingest is idempotent on the feed's event id.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from multiprocessing.connection import Connection, wait
from typing import Any

from command_center.problems import Problem
from command_center.revocation import FEED_KEY
from domain.alert_decision import AlertDecider
from domain.alert_rules import RuleSet
from domain.alert_store import IngestUnavailable, Located, Outcome
from domain.application import IncidentService
from domain.camera_alert import Observation
from domain.incident import Actor, DomainError
from infra.ingest.alert_store import RecorderAlertStore
from infra.ingest.writer_wire import (
    Failed,
    Refused,
    Reply,
    Revoked,
    Stored,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    outcomes_of,
    rebuilt,
    refused,
    stored,
    unavailable,
)
from infra.runtime.logs import configure as configure_logs
from infra.runtime.tuning import tune_process
from infra.security.api_keys import ApiKeys
from infra.security.log_redaction import install as redact_tokens_in_logs
from infra.security.seal_process import locates_nothing
from infra.settings import Settings
from infra.store.sqlite_recorder import LinkageSQLiteRecorder
from infra.store.write_turn import WriteTurn

log = logging.getLogger(__name__)

CHANNELS = 4  # batches in flight at once (the anyio pool may have more threads waiting)


def writer_main(conns: list[Connection], settings: Settings, rules: RuleSet) -> None:
    """The writer process: store each batch a channel sends, answer on that channel. Ends when
    the HTTP process closes every channel (or dies). It stores with the rules the HTTP process
    loaded and checked at start, not with the file as it is now."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server; the server stops us
    # SIGTERM (a service manager stopping the whole group): finish and answer the batch in hand,
    # then exit; when idle, exit at once. (Ignoring it would hang multiprocessing's exit join.)
    state = {"busy": False, "stop": False}

    def on_term(_signum: int, _frame: object) -> None:
        if not state["busy"]:
            raise SystemExit(0)
        state["stop"] = True

    signal.signal(signal.SIGTERM, on_term)
    configure_logs(settings.log_format, process="writer")  # as the server logs (LINKAGE_LOG_FORMAT)
    redact_tokens_in_logs()
    # The HTTP process locates every batch before sending it.
    service = IncidentService(locates_nothing, env=settings.eventsourcing_env())
    store = RecorderAlertStore(service, AlertDecider(rules), keep_states=False)  # no runner here
    keys = ApiKeys.for_settings(settings)  # a key revoked after the HTTP process checked it
    if isinstance(service.recorder, LinkageSQLiteRecorder):
        service.recorder.remember = False
        service.recorder.turn = WriteTurn(settings.sqlite_path)  # the server takes turns too
    tune_process()
    open_conns = list(conns)
    try:
        while open_conns and not state["stop"]:
            for conn in wait(open_conns):
                if state["stop"]:
                    break
                assert isinstance(conn, Connection)
                try:
                    data = conn.recv_bytes()
                except (EOFError, OSError):
                    open_conns.remove(conn)
                    continue
                state["busy"] = True
                reply = _store(store, keys, data)
                try:
                    conn.send_bytes(reply)
                except OSError:
                    open_conns.remove(conn)
                state["busy"] = False
    finally:
        service.close()


def _store(store: RecorderAlertStore, keys: ApiKeys, data: bytes) -> bytes:
    """One request in, its encoded reply out."""
    observations: list[Observation] = []
    reply: Reply
    try:
        feed, observations, located, actor, key_id = decode_request(data)
        if key_id is not None and not keys.active(key_id):
            reply = Revoked(f"API key {key_id} was revoked; nothing of this batch was stored")
        else:
            reply = stored(store.ingest(feed, observations, located, actor))  # type: ignore[arg-type]
    except DomainError as exc:
        reply = refused(exc)
    except Exception as exc:  # logged here; the feed gets a 503 and sends it again
        log.exception("storing a batch of %d alerts (%d bytes) failed", len(observations), len(data))
        reply = Failed(f"{type(exc).__name__}: {exc}")
    return encode_reply(reply)


class WriterProcess:
    """The HTTP process's side, an `AlertStore` (domain/alert_store.py): sends located batches
    to the writer process and waits for the outcomes."""

    def __init__(self, settings: Settings, channels: int = CHANNELS,
                 timeout: float | None = None, *, rules: RuleSet | None = None) -> None:
        self.settings = settings
        # Loaded once here: every writer this starts (after one died) stores with the same rules
        # as the first, however the file has changed since.
        if rules is None:
            from infra.loaders.alert_rules import load_rules

            rules = load_rules(settings.alert_rules)
        self.rules = rules
        self.channels = channels
        self.timeout = settings.ingest_timeout if timeout is None else timeout
        if not self.timeout > 0:
            raise ValueError(f"LINKAGE_INGEST_TIMEOUT must be more than 0 seconds; got {self.timeout}")
        self._lock = threading.Lock()
        # Officers' commands on alerts, one at a time in this process (the writer's batches are
        # settled with them by eventsourcing's version check).
        self._commands = threading.Lock()
        self._closed = False
        self.restarts = 0  # writers replaced
        self._process: Any = None  # None while waiting to start another (backoff)
        self._answered = False  # whether the current writer has answered a batch yet
        self._failures = 0  # writers in a row that died before answering anything
        self._not_before = 0.0  # when the next writer may start (after such failures)
        self._free: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        # Batches in flight: their deadline and the writer they went to. A watchdog kills a
        # writer that holds one past its deadline, which wakes every call blocked on it (sending
        # or waiting) with an error: no call waits forever on a hung writer.
        self._inflight: dict[object, tuple[float, Any]] = {}
        self._stopping = threading.Event()
        self._start()
        threading.Thread(target=self._watchdog, name="ingest-writer-watchdog", daemon=True).start()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
        pairs = [ctx.Pipe(duplex=True) for _ in range(self.channels)]
        args = ([child for _, child in pairs], self.settings, self.rules)
        process = ctx.Process(target=writer_main, args=args, name="linkage-ingest-writer",
                              daemon=True)
        process.start()
        for _, child in pairs:
            child.close()  # the writer holds these; EOF reaches it when ours close
        free: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        for parent, _ in pairs:
            free.put(parent)
        self._process, self._free, self._answered = process, free, False
        log.info("ingest writer process %s started", process.pid)

    def _replace(self, process: Any, reason: str) -> None:
        """Stop a writer that failed and start another (once, however many batches saw it fail).

        A writer that died before answering anything (it could not start: the store unreachable,
        say) is not restarted at once: the next one may start after 1 s, then 2, 4, ... 30 s while
        they keep failing; batches meanwhile get 503 with that Retry-After."""
        with self._lock:
            if process is not self._process or self._closed:
                return
            old_free = self._free
            process.kill()
            process.join(5)
            self.restarts += 1
            self._failures = 0 if self._answered else self._failures + 1
            if self._failures:
                delay = min(30.0, 2.0 ** (self._failures - 1))
                log.error("ingest writer process %s failed before storing anything (%s); starting "
                          "another in %gs", process.pid, reason, delay)
                self._not_before = time.monotonic() + delay
                self._process, self._free = None, queue.SimpleQueue()
            else:
                log.error("ingest writer process %s failed (%s); starting another", process.pid,
                          reason)
                self._start()
        old_free.put(None)  # wake anyone waiting for a channel of the old writer (each passes it on)

    def _channel(self) -> tuple[Connection, queue.SimpleQueue[Connection | None], Any]:
        """A free channel of a live writer (starting one if it is time), with its pool."""
        while True:
            with self._lock:
                if self._closed:
                    raise IngestUnavailable("the server is shutting down")
                if self._process is None:
                    wait = self._not_before - time.monotonic()
                    if wait > 0:
                        raise IngestUnavailable(
                            "the alert store's writer process could not start; nothing of this "
                            f"batch was acknowledged: send it again in {wait:.0f}s",
                            retry_after=wait)
                    self._start()
                free, process = self._free, self._process
            conn = free.get()
            if conn is None:
                # That writer was replaced (or the server is closing) while we waited: pass the
                # wake-up on, since more callers than channels may be waiting on this queue.
                free.put(None)
                continue
            if not process.is_alive():  # it died while idle: replace it before sending anything
                conn.close()
                self._replace(process, f"exited while idle, code {process.exitcode}")
                continue
            return conn, free, process

    def exclusive(self) -> AbstractContextManager[object]:
        return self._commands

    def alive(self) -> bool:
        """Whether a writer process runs now (/readyz)."""
        process = self._process
        return process is not None and bool(process.is_alive())

    def in_flight(self) -> int:
        """Batches sent to the writer and not yet answered (linkage_ingest_writer_queue)."""
        return len(self._inflight)

    def ingest(self, feed: str, observations: Sequence[Observation], located: Located,
               actor: Actor) -> list[Outcome]:
        data = encode_request((feed, observations, located, actor, FEED_KEY.get()))
        conn, free, process = self._channel()
        token = object()
        self._inflight[token] = (time.monotonic() + self.timeout, process)
        try:
            conn.send_bytes(data)
            reply = decode_reply(conn.recv_bytes())
        except (EOFError, OSError) as exc:
            conn.close()
            self._replace(process, str(exc) or type(exc).__name__)
            raise IngestUnavailable("the alert store's writer process restarted; nothing of this "
                                    "batch was acknowledged: send it again") from None
        finally:
            del self._inflight[token]
        free.put(conn)
        if process is self._process:
            self._answered = True  # it is up: a later death is a crash, not a failure to start
        if isinstance(reply, Stored):
            return outcomes_of(reply)
        if isinstance(reply, Refused):
            raise rebuilt(reply)
        if isinstance(reply, Revoked):
            raise Problem(401, reply.detail, headers={"WWW-Authenticate": 'ApiKey realm="linkage"'})
        raise unavailable(reply)

    def _watchdog(self) -> None:
        while not self._stopping.wait(0.25):
            now = time.monotonic()
            for deadline, process in list(self._inflight.values()):
                if deadline < now and process.is_alive():
                    log.error("ingest writer process %s has not answered in %gs; stopping it",
                              process.pid, self.timeout)
                    process.kill()  # the calls blocked on it fail; the first one replaces it

    def close(self) -> None:
        """Close the channels (the writer finishes the batch it holds and exits)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            process, free = self._process, self._free
        self._stopping.set()
        if process is None:  # between writers (backoff): nothing to stop
            free.put(None)
            return
        deadline = time.monotonic() + min(self.timeout, 10.0)
        for _ in range(self.channels):  # each channel once its batch in flight (if any) is answered
            conn: Connection | None = None
            while conn is None and process.is_alive() and time.monotonic() < deadline:
                with contextlib.suppress(queue.Empty):
                    conn = free.get(timeout=0.1)
            if conn is None:
                break  # the writer is gone (or hung): nothing more to wait for
            conn.close()
        free.put(None)  # callers still waiting for a channel: wake up, see closed, refuse
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)
