"""`linkage up`: the whole distributed mode on one machine, for trying it out.

Starts a Tansu broker (unless told to use LINKAGE_KAFKA_BOOTSTRAP), the relay, one faust
worker and two hubs (the first drives the demo feeds), against the PostgreSQL and Redis
the settings name. Stops everything it started when any process exits or on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from infra.distributed.tansu import TansuBroker
from infra.runtime.preflight import ServiceUnreachable, check
from infra.settings import Settings


def _linkage() -> list[str]:
    return [sys.executable, "-m", "infra.cli"]


def run_local(settings: Settings, *, start_broker: bool = True, demo_rate: float = 2.0) -> int:
    try:
        check(settings, "postgres", "redis")
    except ServiceUnreachable as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    env = {**os.environ, "LINKAGE_STORE": "postgres"}
    broker: TansuBroker | None = None
    if start_broker:
        port = int(settings.kafka_bootstrap.rsplit(":", 1)[-1])
        log = Path(settings.data_dir) / "tansu.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        broker = TansuBroker(port=port, log=log).start()
        env["LINKAGE_KAFKA_BOOTSTRAP"] = broker.bootstrap
        env.setdefault("LINKAGE_KAFKA_IDEMPOTENCE", "false")  # Tansu lacks InitProducerId v0
        click.echo(f"Tansu broker on {broker.bootstrap} (in memory; log {log})")
    else:
        try:
            check(settings, "kafka")
        except ServiceUnreachable as exc:
            click.echo(f"error: {exc}", err=True)
            return 1
    hub_ports = (settings.port, settings.port + 1)
    commands = {
        "relay": ["relay"],
        "worker": ["worker"],
        "hub1": ["serve", "--mode", "distributed", "--port", str(hub_ports[0]), "--demo",
                 "--demo-rate", str(demo_rate)],
        "hub2": ["serve", "--mode", "distributed", "--port", str(hub_ports[1])],
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stopping: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started in the background
        signal.signal(signum, lambda received, _frame: stopping.append(received))
    code = 0
    try:
        for name, args in commands.items():
            processes[name] = subprocess.Popen([*_linkage(), *args], env=env)
        for port in hub_ports:
            click.echo(f"console: http://{settings.host}:{port}/")
        while not stopping:
            for name, process in processes.items():
                if process.poll() == 3 and name == "worker":  # its broker lost data: restart
                    click.echo("worker exited after the broker lost its records; restarting")
                    processes[name] = subprocess.Popen([*_linkage(), *commands[name]], env=env)
                    break
                if process.poll() is not None:
                    click.echo(f"{name} exited with {process.returncode}; stopping", err=True)
                    return process.returncode or 1
            time.sleep(0.5)
        click.echo("stopping")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        if broker is not None:
            broker.stop()
    return code
