"""`linkage up`: the whole distributed mode on one machine, for trying it out.

Starts a Tansu broker (unless told to use LINKAGE_KAFKA_BOOTSTRAP), the relay, one faust
worker and two hubs (the first drives the demo feeds unless the demo rate is 0), against the
PostgreSQL and Redis the settings name. Every child is supervised: one that exits is restarted
after 1, 2, 4 ... 30 s and the others keep running; Ctrl-C (or SIGTERM) stops them all.
The keys every process shares (JWT secret, seal key) are made once, under the data dir, unless
configured, and handed to every child.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path

import click

from infra.distributed.tansu import TansuBroker
from infra.runtime.preflight import ServiceUnreachable, check
from infra.runtime.supervisor import Supervisor
from infra.security.sealer import new_signing_key
from infra.security.secrets_file import read_or_create
from infra.settings import Settings


def _linkage() -> list[str]:
    return [sys.executable, "-m", "infra.cli"]


def shared_keys(settings: Settings) -> dict[str, str]:
    """The environment that gives every child the same JWT secret and seal key: the configured
    ones, else files made once under the data dir (mode 0600) and reused on later runs."""
    env: dict[str, str] = {}
    if not settings.jwt_secret:
        path = Path(settings.jwt_secret_file or settings.data_dir / "jwt_secret").absolute()
        read_or_create(path, lambda: secrets.token_urlsafe(48).encode())
        env["LINKAGE_JWT_SECRET_FILE"] = str(path)
    seal_key = Path(settings.seal_key_path or settings.data_dir / "seal_ed25519.pem").absolute()
    read_or_create(seal_key, new_signing_key)
    env["LINKAGE_SEAL_KEY"] = str(seal_key)
    return env


def run_local(settings: Settings, *, start_broker: bool = True, demo_rate: float = 2.0) -> int:
    try:
        check(settings, "postgres", "redis")
    except ServiceUnreachable as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    keys = shared_keys(settings)
    env = {**os.environ, "LINKAGE_STORE": "postgres", **keys}
    click.echo("keys shared by every process (give them to `linkage token issue --store "
               "postgres` and `linkage audit verify --store postgres` too): "
               + " ".join(f"{name}={value}" for name, value in sorted(keys.items())))
    supervisor = Supervisor(log=lambda line: click.echo(f"linkage up: {line}", err=True))
    if start_broker:
        # The broker is a supervised child like the others: killed, it comes back on the same
        # port (empty, being in memory; the relay produces the log again and the worker
        # rebuilds the views under a new epoch that consoles see only once it caught up).
        broker = TansuBroker(port=int(settings.kafka_bootstrap.rsplit(":", 1)[-1]))
        log = Path(settings.data_dir) / "tansu.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        supervisor.add("broker", broker.argv(), output=log)
        supervisor.start()
        try:
            broker.wait(20.0)
        except (ServiceUnreachable, RuntimeError) as exc:
            supervisor.stop()
            click.echo(f"error: the Tansu broker did not start ({exc}); see {log}", err=True)
            return 1
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
        supervisor.stop(last=["broker"])
    return 0
