"""Distributed-mode benchmark; every figure is a ratio against a baseline measured in the same run.

    python -m bench.bench_distributed [--incidents 400] [--rate 20] [--consoles 10000]
                                      [--open 1000,10000] [--copies 10] [--profile FILE]

1. Throughput: events/s through relay -> faust -> Redis, against aiokafka producing and
   consuming the same events on the same (Tansu) broker; then one worker alone folding
   `--copies` copies of them from a filled topic, against aiokafka on the same records, with
   its CPU seconds and (`--profile`, py-spy) where its main thread's time goes.
2. Latency: POST /api/incidents -> delta on a console, p50/p99, distributed hub against the
   embedded server, at the same fixed rate; and where the distributed time goes (POST -> the
   relay's record -> the worker's by-center record -> the console, from record timestamps).
3. Consoles: resident memory per idle console on one hub, against idle connections to a bare
   websockets echo server; and the p99 time for one delta to reach every console.
4. Scale: at each size of `--open` (open incidents, reported and left open, cumulative), the
   bytes of the city snapshot frame a hub sends and of the largest Redis record, and the events/s
   the worker folds (relay -> faust -> Redis) against raw aiokafka on the same records; all
   three should stay flat as the number of open incidents grows.
5. Relay takeover: from SIGKILL of the relay holding the lease to the standby relay having
   relayed an event written after the kill, against starting a fresh relay process (what a
   supervisor's restart costs, its backoff left out) in the same run.
Needs PostgreSQL and Redis (LINKAGE_TEST_POSTGRES_DSN / LINKAGE_TEST_REDIS_URL or defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

from bench._stack import LINKAGE, Stack, wait_until
from bench.bench_commands import ACTOR, drive, report_fields
from infra.distributed.relay import encode
from infra.distributed.tansu import TansuBroker, free_port

POSTGRES_DSN = os.environ.get("LINKAGE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LINKAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CITY = "130700"
ECHO_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve
async def echo(ws):
    async for message in ws:
        await ws.send(message)
async def main():
    async with serve(echo, "127.0.0.1", int(sys.argv[1]), ping_interval=None):
        print("ready", flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- 1. throughput ---------------------------------------------------------------------------


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, Any]]) -> None:
    """Produce the (key, value, headers) records as the relay does (acks=all, linger 5 ms)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, value=v, key=k, headers=h)
                               for k, v, h in records])
    finally:
        await producer.stop()


async def raw_kafka_rate(bootstrap: str, records: list[tuple[bytes, bytes, Any]],
                         partitions: int) -> float:
    """Events/s for aiokafka alone: produce (acks=all) then consume the same records."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from infra.distributed.relay import ensure_topic

    topic = f"raw-{uuid.uuid4().hex[:8]}"
    await ensure_topic(bootstrap, topic, partitions, 1)
    start = time.perf_counter()
    await produce(bootstrap, topic, records)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    seen = 0
    while seen < len(records):
        batches = await consumer.getmany(timeout_ms=1000)
        seen += sum(len(b) for b in batches.values())
    await consumer.stop()
    return len(records) / (time.perf_counter() - start)


def throughput(stack: Stack, incidents: int, copies: int,
               profile: Path | None = None) -> dict[str, Any]:
    worker = stack.start("worker", "worker")
    stack.start("relay", "relay")
    grids = [g.id for g in stack.jurisdiction.grids()]
    stack.service.report(actor=ACTOR, **report_fields(random.Random(1), grids[0]))
    wait_until(lambda: city_position(stack) >= 1, 120, what="pipeline warm")
    stack.kill("relay")
    first = (stack.service.recorder.max_notification_id() or 0) + 1
    drive(stack.service, grids, incidents, seed=2)
    notifications = stack.service.recorder.select_notifications(start=first, limit=10**6)
    start, cpu = time.perf_counter(), cpu_seconds(worker.pid)
    stack.start("relay", "relay")
    last = notifications[-1].id
    wait_until(lambda: city_position(stack) >= last, 600, every=0.02, what="pipeline drained")
    elapsed = time.perf_counter() - start
    worker_cpu = cpu_seconds(worker.pid) - cpu
    stack.kill("relay")
    pipeline = len(notifications) / elapsed
    raw = asyncio.run(raw_kafka_rate(stack.kafka_bootstrap, [encode(n) for n in notifications],
                                     stack.partitions))
    return {"events": len(notifications), "pipeline_eps": pipeline, "raw_aiokafka_eps": raw,
            "elapsed_s": elapsed, "worker_cpu_s": worker_cpu,
            "worker": worker_rate(stack, notifications, copies, profile)}


def replicas(notifications: list[Any], copies: int) -> list[tuple[bytes, bytes, Any]]:
    """The relay's records of `copies` copies of the notifications, one after the other, each
    copy's incidents under new ids and its notification ids after the previous copy's."""
    from eventsourcing.persistence import Notification

    step = max(n.id for n in notifications)
    return [encode(Notification(id=copy * step + n.id, originator_id=uuid.uuid5(
                uuid.NAMESPACE_OID, f"{copy}:{n.originator_id}"),
                originator_version=n.originator_version, topic=n.topic, state=n.state))
            for copy in range(copies) for n in notifications]


async def fill_topic(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, Any]]) -> None:
    """A new one-partition topic holding the records, as the relay makes and fills it."""
    from infra.distributed.relay import TOPIC_CONFIGS, ensure_topic

    await ensure_topic(bootstrap, topic, 1, 1, TOPIC_CONFIGS)
    await produce(bootstrap, topic, records)


def worker_rate(stack: Stack, notifications: list[Any], copies: int,
                profile: Path | None) -> dict[str, Any]:
    """Events/s one worker folds from a topic that already holds them (no relay in the way):
    a new worker group, on its own topic and Redis prefix, clocked from its first folded event
    to its last; the baseline is raw aiokafka producing and consuming the same records."""
    records = replicas(notifications, copies)
    last = int(orjson.loads(records[-1][1])["notification_id"])
    tag = uuid.uuid4().hex[:8]
    topic, prefix = f"events-rate-{tag}", f"rate{tag}"
    asyncio.run(fill_topic(stack.kafka_bootstrap, topic, records))
    worker = stack.start("worker-rate", "worker", LINKAGE_KAFKA_TOPIC=topic,
                         LINKAGE_REDIS_PREFIX=prefix, LINKAGE_WORKER_ID=f"worker-rate-{tag}")
    wait_until(lambda: city_position(stack, prefix) > 0, 300, every=0.01, what="first fold")
    spy = None if profile is None else subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(worker.pid),
         "--format", "raw", "--rate", "250", "--threads", "--nonblocking", "--output",
         str(profile)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start, cpu, first = time.perf_counter(), cpu_seconds(worker.pid), city_position(stack, prefix)
    wait_until(lambda: city_position(stack, prefix) >= last, 1800, every=0.02,
               what="worker caught up")
    elapsed = time.perf_counter() - start
    worker_cpu = cpu_seconds(worker.pid) - cpu
    breakdown: dict[str, float] = {}
    if spy is not None and profile is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
        breakdown = where_the_time_goes(profile)
    stack.kill("worker-rate")
    client = stack._redis()
    for key in list(client.scan_iter(f"{prefix}:*")):
        client.delete(key)
    client.close()
    folded = sum(1 for _, v, _ in records if int(orjson.loads(v)["notification_id"]) > first)
    raw = asyncio.run(raw_kafka_rate(stack.kafka_bootstrap, records, 1))
    return {"events": folded, "worker_eps": folded / elapsed, "raw_aiokafka_eps": raw,
            "elapsed_s": elapsed, "worker_cpu_s": worker_cpu, "worker_time_share": breakdown}


# Where the worker's main thread spends its time, by the innermost frame that matches (py-spy
# stacks are outermost first); the rest is "other".
STAGES = [  # (stage, frames that belong to it), for the worker before and after #17 target 4
    ("route: decode stored events", ("StoredEvent", "from_stored", "stored_envelope")),
    ("route: encode by-center records", ("route (streams/routing",)),
    ("route: send by-center records", ("route (streams/app", "route (streams/router")),
    ("route: read the events topic (the router's getmany, commit)", ("run (streams/router",)),
    ("project: decode by-center records", ("Routed", "copies (streams/routing")),
    ("project: fold", ("fold_each", "fold (streams")),
    ("project: Redis publish", ("publish (infra/distributed/redis_fanout",)),
    ("project: read-model upsert", ("upsert (infra",)),
    ("project: changelog writes", ("_write (streams", "batch_writes", "load (streams")),
    ("project: other", ("project (streams",)),
    ("faust Record (de)serialization", ("Schema.loads_value", "Schema.dumps_value")),
    ("aiokafka producer (sender, produce requests)", ("Sender.", "SendProduceReqHandler")),
    ("faust consumer (fetch, dispatch to streams)", ("Consumer._drain_messages", "Fetcher.",
                                                     "on_message (faust/transport/conductor")),
    ("idle (waiting for the broker, Redis, PostgreSQL)", ("EpollSelector.select",)),
]


def where_the_time_goes(profile: Path) -> dict[str, float]:
    """Share of the worker's main thread's time (samples) per stage, from a py-spy raw profile
    (`--threads`): the agents, the producer and the event loop run there."""
    totals: dict[str, float] = {}
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "MainThread" not in stack.split(";", 1)[0]:  # faust's consumer thread, timers
            continue
        frames = stack.split(";")
        depths = {name: max((i for i, f in enumerate(frames) if any(n in f for n in needles)),
                            default=-1) for name, needles in STAGES}
        stage = max(depths, key=lambda name: depths[name])  # the innermost matching frame
        if depths[stage] < 0:
            stage = "other (faust, aiokafka, the event loop)"
        totals[stage] = totals.get(stage, 0) + int(count)
    whole = sum(totals.values()) or 1
    return {k: round(v / whole, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


# -- 4. relay takeover -----------------------------------------------------------------------


def relayed_up_to(stack: Stack) -> int:
    """The relay's saved position: every notification up to it is acknowledged by the broker."""
    with psycopg.connect(stack.postgres_dsn) as conn:
        row = conn.execute(f"SELECT position FROM {stack.schema}.linkage_relay_position "
                           "WHERE name = %s", (stack.settings.relay_name,)).fetchone()
    return int(row[0]) if row else 0


def _write_one(stack: Stack) -> int:
    grids = [g.id for g in stack.jurisdiction.grids()]
    stack.service.report(actor=ACTOR, **report_fields(random.Random(), grids[0]))
    return stack.service.recorder.max_notification_id() or 0


def _seconds_until_relayed(stack: Stack, start: float, event: int) -> float:
    wait_until(lambda: relayed_up_to(stack) >= event, 120, every=0.02, what="event relayed")
    return time.perf_counter() - start


def relay_takeover(stack: Stack, rounds: int) -> dict[str, Any]:
    """Seconds from SIGKILL of the lease holder to an event written after it being relayed by
    the standby; baseline: a fresh relay process started at that moment instead."""
    from infra.store.lease import holder

    lease = f"relay:{stack.settings.relay_name}"
    takeovers, cold = [], []
    for _ in range(rounds):
        pid = stack.start("relay-a", "relay").pid

        def holds(pid: int = pid) -> bool:
            return f" pid {pid} " in f"{holder(stack.postgres_dsn, lease, stack.schema)}"

        wait_until(holds, 60, what="relay-a holds the lease")
        _seconds_until_relayed(stack, time.perf_counter(), _write_one(stack))  # relaying
        (stack.root / "relay-b.log").unlink(missing_ok=True)
        stack.start("relay-b", "relay")
        wait_until(lambda: "standing by" in stack.log("relay-b"), 60, what="relay-b standing by")
        start = time.perf_counter()
        stack.kill("relay-a")
        takeovers.append(_seconds_until_relayed(stack, start, _write_one(stack)))

        start = time.perf_counter()
        stack.kill("relay-b")  # no standby now: a fresh process is the way back
        stack.start("relay-a", "relay")
        cold.append(_seconds_until_relayed(stack, start, _write_one(stack)))
        stack.kill("relay-a")
    return {"rounds": rounds, "standby_takeover_s": takeovers, "fresh_relay_s": cold,
            "standby_median_s": statistics.median(takeovers),
            "fresh_median_s": statistics.median(cold)}


# -- 2. latency ------------------------------------------------------------------------------


async def latency(base: str, ws_url: str, rate: float, count: int, grids: list[str],
                  token: str, times: dict[str, tuple[float, float]] | None = None) -> list[float]:
    """Seconds from sending POST /api/incidents to the console receiving its delta; `times`
    gets each incident's (sent, received) as wall-clock (epoch) seconds."""
    from websockets.asyncio.client import connect

    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    async with connect(f"{ws_url}?center={CITY}&token={token}", max_size=None) as ws:
        assert orjson.loads(await ws.recv())["type"] == "snapshot"

        async def listen() -> None:
            async for text in ws:
                now = time.perf_counter()
                frame = orjson.loads(text)
                for change in frame.get("changes", []):
                    if change["op"] == "push" and change["value"]["type"] == "Reported":
                        received[change["value"]["incident"]] = now

        listener = asyncio.create_task(listen())
        async with httpx.AsyncClient(base_url=base, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            start = time.perf_counter()
            for i in range(count):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                t0 = time.perf_counter()
                response = await client.post("/api/incidents", json={
                    "source": "hotline", "category": "noise", "severity": "routine",
                    "grid": grids[i % len(grids)], "description": f"bench {i}"})
                response.raise_for_status()
                sent[response.json()["id"]] = t0
        deadline = time.perf_counter() + 60
        while len(received.keys() & sent.keys()) < len(sent) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        listener.cancel()
    if times is not None:
        wall = time.time() - time.perf_counter()
        times.update({i: (t + wall, received[i] + wall) for i, t in sent.items() if i in received})
    return [received[i] - t for i, t in sent.items() if i in received]


async def record_times(bootstrap: str, topic: str) -> list[tuple[float, bytes]]:
    """(timestamp set by its producer, in seconds; value) of every record of a topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the cluster's metadata
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[tuple[float, bytes]] = []
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                records += [(r.timestamp / 1000, r.value) for r in batch.get(tp, [])]
        return records
    finally:
        await consumer.stop()


def latency_stages(stack: Stack, times: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Where the append -> console time goes, p50/p99 ms per stage: POST to the relay's record
    (its producer's timestamp), to the worker's by-center record for the city (route's), to the
    console (project, Redis, hub, websocket); one clock, one machine."""
    from infra.bootstrap import current_app_id

    relayed: dict[str, float] = {}
    for stamp, value in asyncio.run(record_times(stack.kafka_bootstrap,
                                                 stack.env["LINKAGE_KAFKA_TOPIC"])):
        stored = orjson.loads(value)
        if stored["topic"].endswith(".Reported"):
            relayed[stored["originator_id"]] = stamp
    routed: dict[str, float] = {}
    settings = stack.settings.with_(worker_id=stack.env["LINKAGE_WORKER_ID"])
    for stamp, value in asyncio.run(record_times(stack.kafka_bootstrap,
                                                 f"{current_app_id(settings)}-by-center")):
        record = orjson.loads(value)
        if record["center"] == CITY:  # a batch's events, or (before #17) one faust Record's
            events = record.get("events") or [(0, {**record["event"],
                                                   "type": record["event"]["topic"]})]
            for _, event in events:
                if event["type"].endswith(".Reported"):
                    routed.setdefault(event["originator_id"], stamp)
    ids = [i for i in times if i in relayed and i in routed]
    stages = {"post_to_relayed": [relayed[i] - times[i][0] for i in ids],
              "relayed_to_routed": [routed[i] - relayed[i] for i in ids],
              "routed_to_console": [times[i][1] - routed[i] for i in ids]}
    out: dict[str, float] = {"traced": len(ids)}
    for name, values in stages.items():
        if values:
            out[f"{name}_p50"] = percentile(values, 50) * 1000
            out[f"{name}_p99"] = percentile(values, 99) * 1000
    return out


def start_hub(stack: Stack, name: str) -> tuple[str, str, int]:
    port = free_port()
    process = stack.start(name, "serve", "--mode", "distributed", "--port", str(port))
    wait_until(lambda: "Uvicorn running" in stack.log(name), 60, what=f"{name} listening")
    return f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws/console", process.pid


def start_embedded(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    log = root / "embedded.log"
    process = subprocess.Popen(
        [LINKAGE, "serve", "--store", "sqlite", "--data-dir", str(root / "embedded"), "--port",
         str(port)], stdout=open(log, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
        env={**env, "LINKAGE_STORE": "sqlite"})
    wait_until(lambda: "Uvicorn running" in log.read_text(), 60, what="embedded listening")
    return process, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws/console"


# -- 3. consoles -----------------------------------------------------------------------------


def hold_consoles(url: str, n: int, echo: bool, frame: bool = False) -> subprocess.Popen[str]:
    client = subprocess.Popen(
        [sys.executable, "-m", "bench._distributed_consoles", url, str(n),
         *(["--echo"] if echo else []), *(["--frame"] if frame else [])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
    assert client.stdout is not None
    line = client.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"console client failed: {line!r}")
    return client


def consoles(stack: Stack, n: int) -> dict[str, float]:
    base, ws_url, pid = start_hub(stack, "hub-consoles")
    time.sleep(1)
    hub_before = rss_kib(pid)
    client = hold_consoles(f"{ws_url}?center={CITY}&token={stack.token}", n, echo=False)
    time.sleep(2)
    hub_after = rss_kib(pid)
    t0 = time.time()
    httpx.post(f"{base}/api/incidents", json={
        "source": "hotline", "category": "noise", "severity": "routine",
        "grid": stack.jurisdiction.grids()[0].id, "description": "fan-out"}, timeout=30,
        headers={"Authorization": f"Bearer {stack.token}"}).raise_for_status()
    assert client.stdout is not None and client.stdin is not None
    times = orjson.loads(client.stdout.readline())
    client.stdin.write("\n")
    client.stdin.flush()
    client.wait(120)
    stack.kill("hub-consoles")

    port = free_port()
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port)], stdout=subprocess.PIPE,
                            text=True)
    assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
    time.sleep(1)
    echo_before = rss_kib(echo.pid)
    echo_client = hold_consoles(f"ws://127.0.0.1:{port}", n, echo=True)
    time.sleep(2)
    echo_after = rss_kib(echo.pid)
    assert echo_client.stdin is not None
    echo_client.stdin.write("\n")
    echo_client.stdin.flush()
    echo_client.wait(120)
    echo.terminate()
    echo.wait(10)
    delays = [t - t0 for t in times]
    return {
        "consoles": n,
        "hub_kib_per_console": (hub_after - hub_before) / n,
        "echo_kib_per_connection": (echo_after - echo_before) / n,
        "hub_rss_mib": hub_after / 1024,
        "fanout_p50_ms": percentile(delays, 50) * 1000,
        "fanout_p99_ms": percentile(delays, 99) * 1000,
    }


# -- 4. scale --------------------------------------------------------------------------------


async def city_snapshot_bytes(ws_url: str, token: str) -> int:
    """Bytes of the first frame (the snapshot) a hub sends a city console."""
    from websockets.asyncio.client import connect

    async with connect(f"{ws_url}?center={CITY}&token={token}", max_size=None) as ws:
        frame = await ws.recv()
    return len(frame.encode() if isinstance(frame, str) else frame)


def largest_record_bytes(stack: Stack) -> int:
    """Bytes of the largest view record stored in Redis, over every center."""
    client = stack._redis()
    try:
        keys = list(client.scan_iter(f"{stack.prefix}:record:*", count=1000))
        return max((client.strlen(key) for key in keys), default=0)
    finally:
        client.close()


def city_position(stack: Stack, prefix: str | None = None) -> int:
    """The notification id the city's view in Redis reached (under `prefix`, default the
    stack's); 0 while Redis does not answer (the shared server may drop clients)."""
    from redis.exceptions import RedisError

    from infra.distributed.redis_fanout import Keys

    client = stack._redis()
    try:
        return int(client.hget(Keys(prefix or stack.prefix).snapshot(CITY), "position") or 0)
    except RedisError:
        return 0
    finally:
        client.close()


def scale(stack: Stack, sizes: list[int]) -> list[dict[str, float]]:
    """Per size: snapshot and record bytes, and fold rate against raw aiokafka."""
    grids = [g.id for g in stack.jurisdiction.grids()]
    rng = random.Random(5)
    rows: list[dict[str, float]] = []
    # Warm up (the worker joins its group) before the clock starts: one incident through.
    stack.service.report(actor=ACTOR, **report_fields(rng, grids[0]))
    stack.start("relay", "relay")
    wait_until(lambda: city_position(stack) >= 1, 120, what="pipeline warm")
    stack.kill("relay")
    reported = 1
    for size in sorted(sizes):
        first = (stack.service.recorder.max_notification_id() or 0) + 1
        for i in range(reported, size):  # the relay is stopped: the worker sees them in one go
            stack.service.report(actor=ACTOR, **report_fields(rng, grids[i % len(grids)]))
        reported = size
        last = stack.service.recorder.max_notification_id() or 0
        notifications = stack.service.recorder.select_notifications(start=first, limit=10**7)
        start = time.perf_counter()
        stack.start("relay", "relay")
        wait_until(lambda last=last: city_position(stack) >= last, 1800, every=0.1,
                   what=f"{size} open incidents folded")
        elapsed = time.perf_counter() - start
        stack.kill("relay")
        raw = asyncio.run(raw_kafka_rate(stack.kafka_bootstrap,
                                         [encode(n) for n in notifications], stack.partitions))
        _, ws_url, _ = start_hub(stack, f"hub-scale-{size}")  # a log of its own to wait on
        snapshot = asyncio.run(city_snapshot_bytes(ws_url, stack.token))
        stack.kill(f"hub-scale-{size}")
        rows.append({"open": size, "events": len(notifications),
                     "worker_eps": len(notifications) / elapsed, "raw_aiokafka_eps": raw,
                     "city_snapshot_bytes": snapshot,
                     "largest_redis_record_bytes": largest_record_bytes(stack)})
    return rows


# -- run -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_distributed")
    parser.add_argument("--incidents", type=int, default=400)
    parser.add_argument("--rate", type=float, default=20.0, help="commands/s for latency")
    parser.add_argument("--latency-count", type=int, default=200)
    parser.add_argument("--consoles", type=int, default=10_000)
    parser.add_argument("--open", default="", help="open-incident sizes for the scale stage, "
                        "e.g. 1000,10000,100000 (empty: skip it)")
    parser.add_argument("--only-scale", action="store_true", help="run the scale stage alone")
    parser.add_argument("--copies", type=int, default=10, help="copies of the throughput "
                        "stage's events one worker folds from a filled topic")
    parser.add_argument("--profile", type=Path, help="record the worker with py-spy during the "
                        "throughput stage into this file, and print where its time goes")
    parser.add_argument("--takeover-rounds", type=int, default=3,
                        help="relay takeovers to time (0: skip)")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.open.split(",") if n.strip()]

    root = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    broker = TansuBroker(log=root / "tansu.log").start()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    stack = Stack(root / "stack", POSTGRES_DSN, schema, REDIS_URL, broker.bootstrap, partitions=4)
    embedded: subprocess.Popen[bytes] | None = None
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                          f"Python {platform.python_version()}"}
    try:
        if sizes:
            stack.start("worker", "worker")
            results["scale"] = scale(stack, sizes)
            stack.kill("worker")
        if not args.only_scale:
            results["throughput"] = throughput(stack, args.incidents, args.copies, args.profile)
            # now, not only at the end: a later stage may fail on a loaded machine
            print(orjson.dumps({"throughput": results["throughput"]}).decode(), flush=True)
            if args.takeover_rounds > 0:
                results["relay_takeover"] = relay_takeover(stack, args.takeover_rounds)
            stack.start("relay", "relay")
            grids = [g.id for g in stack.jurisdiction.grids()]
            base, ws_url, _ = start_hub(stack, "hub-latency")
            traced: dict[str, tuple[float, float]] = {}
            distributed = asyncio.run(latency(base, ws_url, args.rate, args.latency_count, grids,
                                               stack.token, traced))
            stack.kill("hub-latency")
            embedded, e_base, e_ws = start_embedded(root, stack.env)
            local = asyncio.run(latency(e_base, e_ws, args.rate, args.latency_count, grids,
                                         stack.token))
            results["latency_ms"] = {
                "rate_per_s": args.rate,
                "distributed_p50": percentile(distributed, 50) * 1000,
                "distributed_p99": percentile(distributed, 99) * 1000,
                "embedded_p50": percentile(local, 50) * 1000,
                "embedded_p99": percentile(local, 99) * 1000,
                "received": [len(distributed), len(local), args.latency_count],
                "distributed_stages": latency_stages(stack, traced),
            }
            embedded.terminate()
            embedded.wait(10)
            embedded = None
            if args.consoles > 0:  # --consoles 0 skips the idle-console stage
                results["consoles"] = consoles(stack, args.consoles)
    finally:
        if embedded is not None:
            embedded.kill()
        stack.close()
        broker.stop()
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    for row in results.get("scale", []):
        print(f"{row['open']:>7} open: city snapshot {row['city_snapshot_bytes']} B, largest Redis "
              f"record {row['largest_redis_record_bytes']} B; worker {row['worker_eps']:.0f} "
              f"events/s vs raw aiokafka {row['raw_aiokafka_eps']:.0f} (ratio "
              f"{row['worker_eps'] / row['raw_aiokafka_eps']:.3f})")
    if args.only_scale:
        return 0
    t, lat, con = results["throughput"], results["latency_ms"], results.get("consoles")
    if "relay_takeover" in results:
        r = results["relay_takeover"]
        print(f"relay takeover after SIGKILL: standby relays a new event after "
              f"{r['standby_median_s']:.2f} s (median of {r['rounds']}); a fresh relay process "
              f"{r['fresh_median_s']:.2f} s (ratio {r['standby_median_s'] / r['fresh_median_s']:.2f})")
    w = t["worker"]
    for stage, share in w["worker_time_share"].items():
        print(f"  worker main thread {share:6.1%}  {stage}")
    print(f"worker: {w['worker_eps']:.0f} events/s from a filled topic ({w['events']} events, "
          f"{w['worker_cpu_s']:.1f} s CPU in {w['elapsed_s']:.1f} s) vs "
          f"{w['raw_aiokafka_eps']:.0f} events/s raw aiokafka (ratio "
          f"{w['worker_eps'] / w['raw_aiokafka_eps']:.3f})")
    print(f"throughput: {t['pipeline_eps']:.0f} events/s through relay->faust->Redis vs "
          f"{t['raw_aiokafka_eps']:.0f} events/s raw aiokafka "
          f"(ratio {t['pipeline_eps'] / t['raw_aiokafka_eps']:.3f})")
    print(f"latency at {lat['rate_per_s']:g}/s: distributed p50 {lat['distributed_p50']:.1f} ms, "
          f"p99 {lat['distributed_p99']:.1f} ms; embedded p50 {lat['embedded_p50']:.1f} ms, "
          f"p99 {lat['embedded_p99']:.1f} ms (p50 ratio "
          f"{lat['distributed_p50'] / lat['embedded_p50']:.2f}, p99 ratio "
          f"{lat['distributed_p99'] / lat['embedded_p99']:.2f})")
    stages = lat["distributed_stages"]
    for stage in ("post_to_relayed", "relayed_to_routed", "routed_to_console"):
        if f"{stage}_p50" in stages:
            print(f"  {stage.replace('_', ' ')}: p50 {stages[stage + '_p50']:.1f} ms, "
                  f"p99 {stages[stage + '_p99']:.1f} ms ({stages['traced']:.0f} traced)")
    if con is None:
        return 0
    print(f"{con['consoles']} consoles: {con['hub_kib_per_console']:.1f} KiB/console on the hub vs "
          f"{con['echo_kib_per_connection']:.1f} KiB/connection on a bare echo server (ratio "
          f"{con['hub_kib_per_console'] / max(con['echo_kib_per_connection'], 0.001):.2f}); "
          f"one delta reached all: p50 {con['fanout_p50_ms']:.0f} ms, "
          f"p99 {con['fanout_p99_ms']:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
