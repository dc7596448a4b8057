"""`linkage up`: the whole distributed mode on one machine, for trying it out.

Starts a Tansu broker (unless told to use LINKAGE_KAFKA_BOOTSTRAP), the relay, one faust
worker and two hubs (the first drives the demo feeds unless the demo rate is 0), against the
PostgreSQL and Redis the settings name. Every child is supervised: one that exits is restarted
after 1, 2, 4 ... 30 s and the others keep running; Ctrl-C (or SIGTERM) stops them all.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from infra.distributed.tansu import TansuBroker
from infra.runtime.preflight import ServiceUnreachable, check
from infra.runtime.supervisor import Supervisor
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
    demo = ["--demo", "--demo-rate", f"{demo_rate:g}"] if demo_rate > 0 else []
    supervisor = Supervisor(log=lambda line: click.echo(f"linkage up: {line}", err=True))
    supervisor.add("relay", [*_linkage(), "relay"], env)
    supervisor.add("worker", [*_linkage(), "worker"], env)
    supervisor.add("hub1", [*_linkage(), "serve", "--mode", "distributed", "--port",
                            str(hub_ports[0]), *demo], env)
    supervisor.add("hub2", [*_linkage(), "serve", "--mode", "distributed", "--port",
                            str(hub_ports[1])], env)
    stopping: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started in the background
        signal.signal(signum, lambda received, _frame: stopping.append(received))
    try:
        supervisor.start()
        for port in hub_ports:
            click.echo(f"console: http://{settings.host}:{port}/")
        supervisor.run(lambda: bool(stopping))
        click.echo("stopping")
    finally:
        supervisor.stop()
        if broker is not None:
            broker.stop()
    return 0
