"""Distributed mode on a Redis Cluster: a 3-node cluster this test starts itself, the worker
writing through it (`redis+cluster://`), consoles on two hubs converging on the replay's view."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port
from tests.history import ScriptedHistory
from tests.integration.distributed import Console, Stack, canonical, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def cluster_url(tmp_path: Path) -> Iterator[str]:
    """Three redis-server processes in cluster mode on free loopback ports, joined."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.fail("redis-server and redis-cli are needed to start a Redis Cluster")
    ports = [free_port() for _ in range(3)]
    processes = []
    for port in ports:
        node = tmp_path / f"node-{port}"
        node.mkdir()
        processes.append(subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", str(node / "nodes.conf"), "--dir", str(node),
             "--cluster-port", str(free_port()),  # not port + 10000, which may pass 65535
             "--save", "", "--appendonly", "no"],
            stdout=(node / "redis.log").open("wb"), stderr=subprocess.STDOUT))
    try:
        for port in ports:
            wait_until(lambda p=port: _pings(p), 20, what=f"redis-server on {port}")
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        # Every node, not only the first: a node that has not yet learned the slot map answers
        # CLUSTERDOWN for its slots, and the worker would start writing against it.
        wait_until(lambda: all(_cluster_ok(p) for p in ports), 30, what="cluster state ok")
        yield f"redis+cluster://127.0.0.1:{ports[0]}/0"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=port).ping())
    except redis.RedisError:
        return False


def _cluster_ok(port: int) -> bool:
    info = redis.Redis(host="127.0.0.1", port=port, decode_responses=True).cluster("INFO")
    return bool(info.get("cluster_state") == "ok")


def test_consoles_on_two_hubs_converge_with_the_worker_writing_through_a_redis_cluster(
        tmp_path: Path, postgres_dsn: str, pg_schema: str, cluster_url: str,
        kafka_bootstrap: str) -> None:
    stack = Stack(tmp_path / "stack", postgres_dsn, pg_schema, cluster_url, kafka_bootstrap)
    consoles: list[Console] = []
    try:
        city = stack.jurisdiction.root.id
        stack.start("relay", "relay")
        stack.start("worker", "worker")
        hubs = []
        for name in ("hub1", "hub2"):
            port = free_port()
            stack.start(name, "serve", "--mode", "distributed", "--port", str(port))
            wait_until(lambda n=name: "Uvicorn running" in stack.log(n) or
                       stack.processes[n].poll() is not None, 60, what=f"{name} listening")
            assert stack.processes[name].poll() is None, stack.log(name)
            hubs.append(f"ws://127.0.0.1:{port}/ws/console")
        consoles = [Console(f"{hub}?center={city}&token={stack.token}") for hub in hubs]
        grids = [g.id for g in stack.jurisdiction.grids()]
        history = ScriptedHistory(stack.service, grids, incidents=60, seed=17)
        history.run()
        stack.wait_converged(120, what="cluster views at the replay's seqs")
        stack.assert_equal_to_replay()
        # The snapshots of the centers live on more than one node: the cluster really shards.
        nodes = redis.RedisCluster.from_url(cluster_url.replace("redis+cluster", "redis"))
        try:
            slots = {nodes.keyslot(f"{stack.prefix}:snapshot:{{{c}}}") for c in stack.centers}
            owners = {nodes.get_node_from_key(f"{stack.prefix}:snapshot:{{{c}}}").name
                      for c in stack.centers}
        finally:
            nodes.close()
        assert len(slots) > 1 and len(owners) > 1
        views, seqs = stack.replay()
        for console in consoles:
            wait_until(lambda c=console: (c.state() or ("", -1))[1] == seqs[city], 60,
                       what="console converged")
            state = console.state()
            assert state is not None and canonical(state[2]) == canonical(views[city])
    finally:
        for console in consoles:
            console.disconnect()
        stack.close()
