"""The ingest writer process (`linkage serve`'s default): failures answer 503 and lose nothing.

The ingest e2e modules (test_ingest_*.py) already run every test through the writer process
too; these are the writer's own failure modes: killed, stopped, closed, and sharing the store
with the server process's own writes."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from domain.camera_alert import Observation
from domain.incident import InvalidCommand
from infra.ingest.writer import WriterProcess
from infra.settings import Settings
from tests.conftest import RunningServer, spawn_server, start_server
from tests.e2e.alerting import CAMERA, CENTERS, GRID, Console, alert, post_alerts

RAISED = "domain.camera_alert:CameraAlert.Raised"


@pytest.fixture
def writer_server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "data", ingest_process=True)
    yield running
    running.stop()


def writer(server: RunningServer) -> WriterProcess:
    found = server.embedded.writer  # type: ignore[attr-defined]
    assert isinstance(found, WriterProcess)
    return found


def raised_events(server: RunningServer) -> list[str]:
    """Alert ids of every Raised event in the store (one per alert if nothing was doubled)."""
    recorder = server.embedded.service.recorder  # type: ignore[attr-defined]
    return [str(n.originator_id) for n in recorder.select_notifications(1, 1_000_000,
                                                                       topics=[RAISED])]


def city_raised(server: RunningServer) -> int:
    view = httpx.get(f"{server.url}/api/centers/{CENTERS[2]}/view", headers=server.headers).json()
    return int(view["alert_counts"]["raised"])


def wait_for(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_server_stores_through_a_writer_process(writer_server: RunningServer) -> None:
    pid = writer(writer_server).pid
    assert pid is not None and pid != os.getpid()
    response = post_alerts(writer_server, [alert(f"w{i}") for i in range(50)])
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 50
    assert len(raised_events(writer_server)) == 50
    wait_for(lambda: city_raised(writer_server) == 50)


def held_then_killed(server: RunningServer, send: Any) -> Any:
    """Stop the writer, start `send()` in a thread, wait until its batch is in the writer's
    hands (in flight), kill the writer, and return what `send()` returned: the batch the writer
    held when it died."""
    process = writer(server)
    pid = process.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(send()))
    thread.start()
    wait_for(lambda: len(process._inflight) > 0)
    os.kill(pid, signal.SIGKILL)
    thread.join(30)
    assert result, "the request did not return"
    return result[0]


def test_batch_the_writer_held_when_it_died_gets_503_and_is_sent_again(
        writer_server: RunningServer) -> None:
    assert post_alerts(writer_server, [alert(f"a{i}") for i in range(10)]).status_code == 200
    old = writer(writer_server).pid
    batch = [alert(f"b{i}") for i in range(10)]
    refused = held_then_killed(writer_server, lambda: post_alerts(writer_server, batch))
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["Retry-After"]) >= 1
    assert "send it again" in refused.json()["detail"]
    again = post_alerts(writer_server, batch)  # the feed retries: a new writer takes it
    assert again.status_code == 200, again.text
    assert again.json()["created"] == 10
    assert writer(writer_server).pid not in (None, old)
    assert writer(writer_server).restarts == 1
    assert len(raised_events(writer_server)) == 20
    stats = httpx.get(f"{writer_server.url}/api/ingest/stats", headers=writer_server.headers).json()
    assert stats["counts"]["http.unavailable"] == 1


def test_writer_dead_while_idle_is_replaced_before_the_next_batch(
        writer_server: RunningServer) -> None:
    """A writer that died between batches (OOM killer, say) is found dead before anything is
    sent to it: the next batch goes to a new writer and gets its 200, no 503."""
    assert post_alerts(writer_server, [alert("idle-0")]).status_code == 200
    old = writer(writer_server).pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: not _alive(old))
    response = post_alerts(writer_server, [alert("idle-1")])
    assert response.status_code == 200 and response.json()["created"] == 1, response.text
    assert writer(writer_server).pid not in (None, old)
    assert writer(writer_server).restarts == 1
    stats = httpx.get(f"{writer_server.url}/api/ingest/stats", headers=writer_server.headers).json()
    assert "http.unavailable" not in stats["counts"]


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_writer_killed_during_a_burst_loses_nothing_and_doubles_nothing(
        writer_server: RunningServer, how: signal.Signals) -> None:
    """Four feeds send 40 batches and retry on 503, as feeds do; the writer is killed mid-burst
    (SIGTERM: it answers the batch in hand first, then exits). Every alert is stored exactly
    once and counted once on the city console."""
    batches = [[alert(f"k{b}-{i}") for i in range(250)] for b in range(40)]
    pending = list(range(len(batches)))
    lock = threading.Lock()
    refusals: list[int] = []
    statuses: list[int] = []

    def feed() -> None:
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    if not pending:
                        return
                    index = pending.pop()
                while True:
                    response = client.post(f"{writer_server.url}/api/ingest/alerts",
                                           json={"alerts": batches[index]},
                                           headers=writer_server.feed_headers)
                    statuses.append(response.status_code)
                    if response.status_code != 503:
                        assert response.status_code == 200, response.text
                        break
                    refusals.append(index)
                    time.sleep(0.05)

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(statuses) >= 8)
    pid = writer(writer_server).pid
    assert pid is not None
    os.kill(pid, how)
    for thread in threads:
        thread.join(120)
    assert writer(writer_server).restarts == 1
    assert set(statuses) <= {200, 503}
    ids = raised_events(writer_server)
    assert len(ids) == 40 * 250 and len(set(ids)) == len(ids)
    wait_for(lambda: city_raised(writer_server) == 40 * 250, timeout=60)


def test_stopped_writer_times_out_with_503_and_is_replaced(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data", ingest_process=True, ingest_timeout=1.0)
    try:
        # The first writer may take longer than the 1 s timeout to start on a loaded machine:
        # its 503s are retried (the batch is idempotent) until a warm writer takes it.
        wait_for(lambda: post_alerts(running, [alert("before")]).status_code == 200, timeout=60)
        old = writer(running).pid
        assert old is not None
        os.kill(old, signal.SIGSTOP)  # hung, not dead: only the timeout can tell
        # 1,000 alerts are ~200 KB: more than a pipe holds, so sending blocks too, not only
        # waiting for the answer.
        batch = [alert(f"during-{i}") for i in range(1000)]
        started = time.monotonic()
        refused = post_alerts(running, batch)
        assert refused.status_code == 503, refused.text
        assert time.monotonic() - started < 15
        # The hung writer was killed (a stopped process still dies of SIGKILL), not left behind.
        wait_for(lambda: not _alive(old))
        accepted = post_alerts(running, batch)
        assert accepted.status_code == 200 and accepted.json()["created"] == 1000
        assert len(raised_events(running)) == 1001
    finally:
        running.stop()


@pytest.mark.integration
async def test_writer_process_on_postgresql(tmp_path: Path, postgres_dsn: str,
                                            pg_schema: str) -> None:
    """`LINKAGE_STORE=postgres`: the writer process stores into PostgreSQL, rules included, and
    the runner's child process (as `linkage serve` runs it) folds them for the console."""
    running = start_server(tmp_path / "data", ingest_process=True, store="postgres",
                           postgres_dsn=postgres_dsn, postgres_schema=pg_schema,
                           runner_process=True)
    try:
        console = await Console.open(running, CENTERS[0])
        response = post_alerts(running, [alert(f"pg{i}") for i in range(30)]
                               + [alert("pg-fire", label="fire", score=0.95, zones=["stairwell"])])
        assert response.status_code == 200, response.text
        assert response.json()["created"] == 31
        fired = response.json()["results"][-1]
        assert fired.get("incident"), fired
        view = await console.wait_for(lambda v: v["alert_counts"]["raised"] == 31
                                      and fired["incident"] in v["queue"])
        assert view["queue"][fired["incident"]]["severity"] == "major"
        await console.close()
        assert post_alerts(running, [alert("pg0")]).json()["duplicate"] == 1
        assert running.embedded.runner is None  # type: ignore[attr-defined]
        assert running.embedded.mirror.batches > 0  # type: ignore[attr-defined]
    finally:
        running.stop()


def test_idle_writer_exits_on_sigterm_and_the_next_batch_starts_another(
        writer_server: RunningServer) -> None:
    assert post_alerts(writer_server, [alert("t0")]).status_code == 200  # started and idle
    process = writer(writer_server)._process
    os.kill(process.pid, signal.SIGTERM)
    process.join(10)
    assert process.exitcode == 0  # a clean exit, not killed by the signal
    assert post_alerts(writer_server, [alert("t1")]).json()["created"] == 1  # a new writer


def test_stopping_the_server_ends_its_writer(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data", ingest_process=True)
    assert post_alerts(running, [alert("one")]).status_code == 200
    pid = writer(running).pid
    assert pid is not None and _alive(pid)
    running.stop()
    wait_for(lambda: not _alive(pid), timeout=15)


def test_killed_server_takes_its_writer_with_it(tmp_path: Path) -> None:
    """kill -9 of `linkage serve`: the writer reads end-of-file on its channels and exits."""
    served = spawn_server(tmp_path / "data")
    try:
        children = _children(served.process.pid)  # type: ignore[attr-defined]
        writers = [pid for pid in children if b"multiprocessing" in _cmdline(pid)]
        assert writers, f"no writer process among {children}"
    finally:
        served.kill()
    for pid in writers:
        wait_for(lambda pid=pid: not _alive(pid), timeout=15)


async def test_officer_commands_and_the_writer_share_the_store(
        writer_server: RunningServer) -> None:
    """Incidents reported (stored by the server process) while alert batches stream (stored by
    the writer): SQLite serializes the two writers; nothing fails and both reach the console."""
    console = await Console.open(writer_server, CENTERS[2])

    def report(i: int) -> int:
        return httpx.post(f"{writer_server.url}/api/incidents", headers=writer_server.headers,
                          json={"source": "hotline", "category": "noise", "grid": GRID,
                                "description": f"shared store {i}"}, timeout=30).status_code

    def alerts(b: int) -> int:
        return post_alerts(writer_server, [alert(f"s{b}-{i}") for i in range(200)]).status_code

    loop = asyncio.get_running_loop()
    results = await asyncio.gather(
        *(loop.run_in_executor(None, report, i) for i in range(20)),
        *(loop.run_in_executor(None, alerts, b) for b in range(20)),
    )
    assert results[:20] == [201] * 20 and results[20:] == [200] * 20
    view = await console.wait_for(lambda v: v["alert_counts"]["raised"] == 4000
                                  and len(v["queue"]) >= 20)
    assert len(view["queue"]) == 20
    await console.close()


def test_acknowledging_while_a_feed_updates_the_alert_is_never_a_500(
        writer_server: RunningServer) -> None:
    """Frigate updates (the writer) race an officer's acknowledge (the server process): the
    officer gets 200 or 409 (retry), never 500, and the alert ends up acknowledged."""
    alert_id = post_alerts(writer_server, [alert("race")]).json()["results"][0]["alert"]
    stop = threading.Event()

    def updates() -> None:
        score = 0.71
        while not stop.is_set():
            post_alerts(writer_server, [alert("race", type="update", score=score)])
            score = min(0.99, score + 0.001)

    thread = threading.Thread(target=updates)
    thread.start()
    try:
        statuses = []
        for _ in range(20):
            response = httpx.post(f"{writer_server.url}/api/alerts/{alert_id}/acknowledge",
                                  headers=writer_server.headers, json={"note": "seen"})
            statuses.append(response.status_code)
            if response.status_code == 200:
                break
        assert set(statuses) <= {200, 409}, statuses
        assert statuses[-1] == 200, statuses
    finally:
        stop.set()
        thread.join(30)
    detail = httpx.get(f"{writer_server.url}/api/alerts/{alert_id}", headers=writer_server.headers)
    assert detail.json()["disposition"] == "acknowledged"


async def test_feed_websocket_gets_503_with_retry_after_and_stays_open(
        writer_server: RunningServer) -> None:
    from websockets.asyncio.client import connect

    async with connect(f"{writer_server.ws_url}/ws/feed",
                       additional_headers=writer_server.feed_headers) as ws:
        await ws.send(orjson.dumps({"ref": 1, "alert": alert("ws-1")}).decode())
        assert orjson.loads(await ws.recv())["type"] == "ack"
        pid = writer(writer_server).pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        await ws.send(orjson.dumps({"ref": 2, "alert": alert("ws-2")}).decode())
        while not writer(writer_server)._inflight:  # held by the writer when it dies
            await asyncio.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        refused = orjson.loads(await ws.recv())
        assert (refused["type"], refused["ref"], refused["status"]) == ("error", 2, 503)
        assert refused["retry_after"] >= 1
        await ws.send(orjson.dumps({"ref": 3, "alert": alert("ws-2")}).decode())  # sent again
        again = orjson.loads(await ws.recv())
        assert (again["type"], again["ref"], again["created"]) == ("ack", 3, 1)
    assert len(raised_events(writer_server)) == 2


async def test_mqtt_message_the_dead_writer_held_is_redelivered_and_stored_once(
        tmp_path: Path, mqtt_address: tuple[str, int]) -> None:
    """The subscriber does not PUBACK a batch the writer did not commit; after it reconnects
    the broker redelivers it (persistent session) and a new writer stores it, once."""
    import uuid

    import aiomqtt

    from domain.camera_alert import alert_id

    host, port = mqtt_address
    topic = f"test/{uuid.uuid4().hex}/frigate/events"
    running = start_server(tmp_path / "data", ingest_process=True, mqtt=True,
                           mqtt_url=f"mqtt://{host}:{port}", mqtt_topic=topic)
    try:
        stats = f"{running.url}/api/ingest/stats"
        wait_for(lambda: httpx.get(stats, headers=running.headers).json()["counts"]
                 .get("mqtt.subscribed", 0) >= 1)
        pid = writer(running).pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # it takes the batch, and dies holding it
        event = {"id": f"mq-{uuid.uuid4().hex[:6]}", "camera": CAMERA, "label": "person",
                 "score": 0.8, "top_score": 0.8, "current_zones": [], "start_time": 1_800_000_000.0,
                 "end_time": None, "false_positive": False}
        async with aiomqtt.Client(host, port) as client:
            await client.publish(topic, orjson.dumps({"type": "new", "before": event,
                                                      "after": event}), qos=1)
        wait_for(lambda: len(writer(running)._inflight) > 0)
        os.kill(pid, signal.SIGKILL)
        ref = str(alert_id("frigate", event["id"]))
        wait_for(lambda: ref in raised_events(running), timeout=30)
        counts = httpx.get(stats, headers=running.headers).json()["counts"]
        assert counts.get("mqtt.unavailable", 0) >= 1  # the first delivery met the dead writer
        assert raised_events(running).count(ref) == 1
        assert writer(running).restarts == 1
    finally:
        running.stop()


def test_writer_process_maps_domain_errors_and_refuses_after_close(tmp_path: Path) -> None:
    """The writer's side of an error reaches the caller as the same kind of error (a 422 for a
    bad command), and a closed writer refuses with IngestUnavailable (503), not a hang."""
    from domain.alert_store import IngestUnavailable

    settings = Settings().with_(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    process = WriterProcess(settings, timeout=60)
    actor = {"user": "direct", "role": "feed", "center": None}
    place = [(GRID, list(reversed(CENTERS)))]
    try:
        good = Observation(feed_event_id="fine", start_time=1_800_000_000.0, camera=CAMERA)
        outcomes = process.ingest("direct", [good], place, actor)  # type: ignore[arg-type]
        assert [o.status for o in outcomes] == ["created"]
        bad = Observation(feed_event_id="bad", start_time=1_800_000_000.0, camera=CAMERA,
                          kind="drone")
        with pytest.raises(InvalidCommand, match="alert kind must be one of") as refused:
            process.ingest("direct", [bad], place, actor)  # type: ignore[arg-type]
        assert type(refused.value) is InvalidCommand  # rebuilt as the class the writer raised
        again = process.ingest("direct", [good], place, actor)  # type: ignore[arg-type]
        assert [o.status for o in again] == ["duplicate"]
    finally:
        process.close()
    with pytest.raises(IngestUnavailable):
        process.ingest("direct", [good], place, actor)  # type: ignore[arg-type]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read()
    except FileNotFoundError:
        return b""


def test_more_feeds_than_channels_when_the_writer_dies_every_request_is_answered(
        writer_server: RunningServer) -> None:
    """Twelve feeds at once (more than the writer's four channels: eight wait for a channel)
    when the writer dies: every request is answered, 200 or 503, none waits forever on a
    channel of the dead writer (and holds a worker thread, and later the shutdown, with it)."""
    assert post_alerts(writer_server, [alert("warm")]).status_code == 200
    pid = writer(writer_server).pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # four batches sent and held, eight waiting for a channel
    answers: dict[int, object] = {}

    def feed(i: int) -> None:
        try:
            answers[i] = httpx.post(f"{writer_server.url}/api/ingest/alerts",
                                    json={"alerts": [alert(f"many{i}")]},
                                    headers=writer_server.feed_headers, timeout=20).status_code
        except httpx.TimeoutException as exc:
            answers[i] = repr(exc)

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    os.kill(pid, signal.SIGKILL)
    for thread in threads:
        thread.join(40)
    assert sorted(answers) == list(range(12))
    assert set(answers.values()) <= {200, 503}, answers
    for i, status in answers.items():  # the feeds retry what was refused: all stored, once
        if status == 503:
            assert post_alerts(writer_server, [alert(f"many{i}")]).status_code == 200
    ids = raised_events(writer_server)
    assert len(ids) == 13 and len(set(ids)) == 13


def test_a_restarted_writer_keeps_the_rules_and_tree_the_server_started_with(
        tmp_path: Path) -> None:
    """The rules file edited (here: broken) while the server runs: a writer started after that
    (its predecessor died) still stores with the rules the server loaded and checked at start,
    rather than dying on the file at every start (503 forever) or applying rules the server never
    validated."""
    from infra.loaders.alert_rules import DEFAULT_RULES

    rules = tmp_path / "rules.toml"
    rules.write_bytes(DEFAULT_RULES.read_bytes())
    running = start_server(tmp_path / "data", ingest_process=True, alert_rules=rules)
    try:
        fire = alert("fire-1", label="fire", score=0.95, zones=["stairwell"])
        first = post_alerts(running, [fire])
        assert first.status_code == 200 and first.json()["results"][0].get("rules"), first.text
        rules.write_text("this is [not toml")
        old = writer(running).pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: not _alive(old))
        again = post_alerts(running, [alert("fire-2", label="fire", score=0.95,
                                            zones=["stairwell"])])
        assert again.status_code == 200, again.text
        assert again.json()["results"][0].get("rules"), again.text
        assert writer(running).restarts == 1
    finally:
        running.stop()


@pytest.mark.slow  # tens of seconds: CI runs it, a plain `make test` does not
def test_a_writer_that_cannot_start_is_retried_with_backoff(tmp_path: Path) -> None:
    """The store unreachable when a writer starts (PostgreSQL on a closed port): the batch gets
    503, and no new writer is spawned per batch: the next may start after 1 s, then 2 s, ...
    with Retry-After saying so."""
    from domain.alert_store import IngestUnavailable

    settings = Settings().with_(data_dir=tmp_path / "data", store="postgres",
                                postgres_dsn="postgresql://postgres@127.0.0.1:1/test")
    settings.data_dir.mkdir(parents=True)
    process = WriterProcess(settings, timeout=60)
    actor = {"user": "direct", "role": "feed", "center": None}
    place = [(GRID, list(reversed(CENTERS)))]
    obs = [Observation(feed_event_id="x", start_time=1_800_000_000.0, camera=CAMERA)]
    try:
        with pytest.raises(IngestUnavailable):
            process.ingest("direct", obs, place, actor)  # type: ignore[arg-type]
        assert process.restarts == 1 and process.pid is None  # waiting, not respawned
        with pytest.raises(IngestUnavailable, match="could not start") as backoff:
            process.ingest("direct", obs, place, actor)  # type: ignore[arg-type]
        assert 0 < backoff.value.retry_after <= 1.0
        assert process.restarts == 1  # that batch spawned nothing
        time.sleep(backoff.value.retry_after)
        with pytest.raises(IngestUnavailable):
            process.ingest("direct", obs, place, actor)  # type: ignore[arg-type]  # tries again, fails
        assert process.restarts == 2
        with pytest.raises(IngestUnavailable) as longer:
            process.ingest("direct", obs, place, actor)  # type: ignore[arg-type]
        assert 1.0 < longer.value.retry_after <= 2.0  # doubled
    finally:
        process.close()
