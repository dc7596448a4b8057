"""The `linkage` command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path

import click
import orjson

from domain.alert_rules import RuleError
from domain.jurisdiction import JurisdictionError
from infra.loaders.cameras import CameraRegistryError
from infra.loaders.jurisdiction import load_jurisdiction
from infra.runtime.tuning import tune_process, tune_switching
from infra.settings import Settings


def _settings(data_dir: str | None, store: str | None, jurisdiction: str | None) -> Settings:
    return Settings().with_(
        data_dir=Path(data_dir) if data_dir else None,
        store=store,
        jurisdiction=Path(jurisdiction) if jurisdiction else None,
    )


@click.group()
def main() -> None:
    """Linkage: the event-sourced linkage command center."""
    from infra.runtime.logs import configure

    try:  # LINKAGE_LOG_FORMAT: text (default) or json, one object per line
        configure(Settings().log_format)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    logging.getLogger("httpx").setLevel(logging.WARNING)


@main.command()
@click.option("--host", default=None, help="address to listen on (LINKAGE_HOST, 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (LINKAGE_PORT, 8000)")
@click.option("--data-dir", default=None, help="where the SQLite stores live (LINKAGE_DATA_DIR, var)")
@click.option("--store", type=click.Choice(["sqlite", "postgres"]), default=None)
@click.option("--jurisdiction", default=None, help="GeoJSON jurisdiction tree")
@click.option("--demo/--no-demo", default=False, help="drive realistic activity through the API")
@click.option("--demo-rate", type=click.FloatRange(min=0), default=2.0,
              help="demo actions per second (0: no demo)")
@click.option("--mqtt/--no-mqtt", default=None,
              help="subscribe to Frigate events over MQTT (LINKAGE_MQTT, off; LINKAGE_MQTT_URL)")
@click.option("--mode", type=click.Choice(["embedded", "distributed"]), default="embedded",
              help="embedded: one process; distributed: a hub over PostgreSQL and Redis")
def serve(host: str | None, port: int | None, data_dir: str | None, store: str | None,
          jurisdiction: str | None, demo: bool, demo_rate: float, mqtt: bool | None,
          mode: str) -> None:
    """Run the command center (embedded: one process; distributed: one hub of many)."""
    import uvicorn

    from infra.bootstrap import build_embedded, build_hub
    from infra.demo.cameras import CameraDemo
    from infra.demo.incidents import DemoDriver
    from infra.loaders.cameras import DEFAULT_CAMERAS, load_cameras
    from infra.runtime.preflight import ServiceUnreachable
    from infra.runtime.server import server_config

    settings = _settings(data_dir, store, jurisdiction).with_(host=host, port=port, mqtt=mqtt)
    demo = demo and demo_rate > 0  # a rate of 0 turns the demo off (it used to mean "flat out")
    try:
        embedded = build_hub(settings) if mode == "distributed" else build_embedded(settings)
    except JurisdictionError as exc:
        raise click.ClickException(f"jurisdiction: {exc}") from None
    except ServiceUnreachable as exc:
        raise click.ClickException(str(exc)) from None
    except (ValueError, OSError) as exc:  # security settings; rules and camera files
        raise click.ClickException(str(exc)) from None
    app = embedded.app()
    tune_process()
    try:
        tune_switching(settings.switch_interval_ms)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    from infra.runtime.logs import uvicorn_log_config

    config = server_config(app, settings, host=settings.host, port=settings.port,
                           log_level="info", access_log=settings.access_log,
                           log_config=uvicorn_log_config(settings.log_format))
    server = uvicorn.Server(config)
    from infra.security.log_redaction import install as redact_tokens_in_logs

    redact_tokens_in_logs()
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr="127.0.0.1",
                          registry=embedded.services.metrics.registry)
        click.echo(f"metrics: http://127.0.0.1:{settings.metrics_port}/metrics")
    url = f"http://{settings.host}:{settings.port}/"
    demo_headers: dict[str, str] = {}
    login = [f"Linkage command center ({mode}, {embedded.settings.store}) — console: {url}"]
    if demo and embedded.tokens is not None:
        root = embedded.jurisdiction.root.id
        demo_token = embedded.tokens.issue("demo-officer", "city_officer", root)
        demo_headers = {"Authorization": f"Bearer {demo_token}"}
        auditor = embedded.tokens.issue("demo-auditor", "auditor", root)
        login += [f"login (demo city duty officer): {url}#token={demo_token}",
                  f"replay (demo auditor): {url}replay#token={auditor}"]
        # A township's officer and a department, when the tree and the directory have them.
        township = next((u.id for u in embedded.jurisdiction.centers() if u.level == "township"),
                        None)
        if township is not None:
            officer = embedded.tokens.issue("demo-township", "township_officer", township)
            login.append(f"login (demo township duty officer): {url}#token={officer}")
        department = "urban_management"
        handler = embedded.tokens.issue("demo-department", "department", None,
                                        department=department)
        login.append(f"login (demo department {department}): {url}#token={handler}")
    else:
        login.append("log in with a token: linkage token issue --user NAME --role city_officer "
                     f"--center {embedded.jurisdiction.root.id}, then open {url}#token=<token>")

    async def show_login() -> None:
        """The login links, last after the start-up lines, and again every login_reminder
        seconds while the demo runs (its activity would bury them otherwise)."""
        while not server.started:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5 if demo else 0.1)  # after the demo's first lines
        while True:
            click.echo("\n".join(login))
            if not (demo and settings.login_reminder > 0):
                return
            await asyncio.sleep(settings.login_reminder)

    async def main_async() -> None:
        tasks = [asyncio.create_task(server.serve())]
        reminder = asyncio.create_task(show_login())
        if demo:
            grids = [g.id for g in embedded.jurisdiction.grids()]
            driver = DemoDriver(url.rstrip("/"), grids, rate=demo_rate, headers=demo_headers)

            async def run_demo() -> None:
                while not server.started:
                    await asyncio.sleep(0.05)
                click.echo(f"demo feeds running at {demo_rate}/s through {url}api")
                await driver.run()

            tasks.append(asyncio.create_task(run_demo()))
            camera_headers: dict[str, str] = {}
            if embedded.keys is not None:  # a feed key for the demo cameras (shown nowhere)
                camera_headers = {"X-API-Key": embedded.keys.issue("demo-cameras")[1]}
            registry = load_cameras(settings.cameras, embedded.jurisdiction,
                                    strict=Path(settings.cameras) != DEFAULT_CAMERAS)
            cameras = CameraDemo(url.rstrip("/"), registry.cameras(), headers=camera_headers)

            async def run_camera_demo() -> None:
                while not server.started:
                    await asyncio.sleep(0.05)
                await cameras.run()

            tasks.append(asyncio.create_task(run_camera_demo()))
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in [*pending, reminder]:
            task.cancel()

    try:
        asyncio.run(main_async())
    finally:
        embedded.close()


@main.command()
@click.option("--data-dir", default=None)
@click.option("--store", type=click.Choice(["sqlite", "postgres"]), default=None)
@click.option("--jurisdiction", default=None)
@click.option("--mode", type=click.Choice(["embedded", "distributed"]), default="embedded",
              help="distributed: a new worker generation rebuilds the views the hubs serve")
@click.option("--wait/--no-wait", default=True,
              help="distributed: follow the rebuild until every center serves its new epoch")
@click.option("--force", is_flag=True,
              help="distributed: every worker is stopped, though the broker still lists members")
def replay(data_dir: str | None, store: str | None, jurisdiction: str | None, mode: str,
           wait: bool, force: bool) -> None:
    """Rebuild every view from the event store, from notification 1, under a new epoch."""
    from rich.progress import Progress

    from infra.bootstrap import build_embedded

    if mode == "distributed":
        from infra.cli.replay_distributed import replay_distributed

        replay_distributed(_settings(data_dir, store, jurisdiction), wait, force)
        return
    # No ingest, and the runner folds here (not in a child): the replay is its work.
    settings = _settings(data_dir, store, jurisdiction).with_(ingest_process=False,
                                                              runner_process=False)
    embedded = build_embedded(settings)
    assert embedded.runner is not None  # runner_process=False: it folds in this process
    tune_process()  # a replay allocates as a burst does
    total = embedded.service.recorder.max_notification_id() or 0
    with Progress() as progress:
        task = progress.add_task("replaying events", total=total)
        count = embedded.runner.rebuild(lambda n: progress.advance(task, n))
    runner = embedded.runner
    click.echo(f"replayed {count} events; epoch {runner.epoch}")
    root = embedded.jurisdiction.root.id
    for unit in embedded.jurisdiction.centers():
        view = runner.view(unit.id)
        opened = len(runner.fold(unit.id).cases)
        if unit.id == root or opened or any(view["counts"].values()):
            counts = " ".join(f"{k}={v}" for k, v in view["counts"].items() if v)
            click.echo(f"{unit.id} {unit.name} ({unit.level}): open={opened} {counts}")
    embedded.close()


@main.command()
@click.option("--metrics-port", type=int, default=None,
              help="port of /metrics with linkage_relay_lag (LINKAGE_RELAY_METRICS_PORT; 0: off)")
def relay(metrics_port: int | None) -> None:
    """Relay the PostgreSQL notification log to Kafka (distributed mode); one relay at a time
    holds the lease and relays, others stand by and take over when it goes."""
    from infra.bootstrap import build_relay, relay_lease
    from infra.runtime.preflight import ServiceUnreachable

    settings = Settings().with_(relay_metrics_port=metrics_port)
    try:
        relay = build_relay(settings)
    except ServiceUnreachable as exc:
        raise click.ClickException(str(exc)) from None
    if settings.relay_metrics_port:
        relay.serve_metrics(settings.relay_metrics_port)
        click.echo(f"relay lag: http://127.0.0.1:{settings.relay_metrics_port}/metrics")

    async def relaying() -> None:
        lag = asyncio.create_task(relay.report_lag())
        try:
            await relay.run()
        finally:
            lag.cancel()

    tune_process()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(relay_lease(settings).run(relaying))


@main.command()
@click.option("--metrics-port", type=int, default=None,
              help="port of /metrics with linkage_worker_consumer_lag "
                   "(LINKAGE_WORKER_METRICS_PORT; 0: off)")
def worker(metrics_port: int | None) -> None:
    """Run a faust-streaming worker: center views from Kafka, deltas to Redis."""
    import faust

    from infra.bootstrap import build_worker
    from infra.distributed.views_claim import ViewsClaimed
    from infra.runtime.preflight import ServiceUnreachable

    settings = Settings().with_(worker_metrics_port=metrics_port)
    try:
        app = build_worker(settings)
    except (ServiceUnreachable, ViewsClaimed) as exc:  # on stderr: what the supervisor shows
        raise click.ClickException(str(exc)) from None
    if settings.worker_metrics_port:
        from infra.distributed.worker_metrics import serve_worker_metrics

        try:
            serve_worker_metrics(app, settings.worker_metrics_port)
        except OSError as exc:
            raise click.ClickException(f"worker metrics port {settings.worker_metrics_port}: "
                                       f"{exc.strerror or exc}") from None
        click.echo(f"worker metrics: http://127.0.0.1:{settings.worker_metrics_port}/metrics")
    tune_process()
    faust.Worker(app, loglevel="INFO").execute_from_commandline()


@main.command()
@click.option("--port", type=int, default=None, help="first hub's port; the second gets port+1")
@click.option("--broker/--no-broker", default=True,
              help="start a local Tansu broker (else use LINKAGE_KAFKA_BOOTSTRAP)")
@click.option("--demo/--no-demo", default=True, help="drive demo feeds through the first hub")
@click.option("--demo-rate", type=click.FloatRange(min=0), default=2.0,
              help="demo actions per second (0: no demo)")
def up(port: int | None, broker: bool, demo: bool, demo_rate: float) -> None:
    """Run distributed mode locally, supervised: Tansu broker, relay, worker, two hubs, demo."""
    from infra.cli.up import run_local

    settings = Settings().with_(port=port, store="postgres")
    sys.exit(run_local(settings, start_broker=broker, demo_rate=demo_rate if demo else 0.0))


@main.group()
def jurisdiction() -> None:
    """Work with jurisdiction tree files."""


@jurisdiction.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def jurisdiction_check(file: str) -> None:
    """Validate a GeoJSON jurisdiction tree; exit 1 naming the first problem."""
    try:
        tree = load_jurisdiction(file)
    except JurisdictionError as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    levels: dict[str, int] = {}
    for unit in tree.units():
        levels[unit.level] = levels.get(unit.level, 0) + 1
    click.echo(f"ok: {orjson.dumps(levels).decode()} ({len(tree.centers())} centers)")


@main.group()
def sla() -> None:
    """Work with the SLA policy file."""


@sla.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def sla_check(file: str) -> None:
    """Validate an SLA policy file (TOML); exit 1 naming the line, the rule and the problem."""
    from domain.sla_policy import PolicyError
    from infra.loaders.sla_policy import load_policy

    try:
        policy = load_policy(file)
    except PolicyError as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    hours = "with working hours" if policy.calendar else "without working hours"
    click.echo(f"ok: default row and {len(policy.rules)} rules, {hours}; escalation every "
               f"{policy.escalate_every}; {policy.unreachable_attempts} unreachable attempts "
               f"{policy.attempt_gap} apart allow closing without a visit")


@main.group()
def assessment() -> None:
    """Work with the assessment (考核) weights file."""


@assessment.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def assessment_check(file: str) -> None:
    """Validate an assessment weights file (TOML); exit 1 naming the line and the problem."""
    from infra.loaders.assessment_weights import load_weights
    from projections.assessment import WeightsError

    try:
        weights = load_weights(file)
    except WeightsError as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    click.echo("ok: " + ", ".join(f"{k}={v:g}" for k, v in weights.weights.items()))


@main.group()
def alerts() -> None:
    """Work with the alert rules file and the camera registry."""


@alerts.command("check-rules")
@click.argument("file", type=click.Path(dir_okay=False))
def alerts_check_rules(file: str) -> None:
    """Validate an alert rules file (TOML or JSON); exit 1 naming the rule and the problem."""
    from infra.loaders.alert_rules import load_rules

    try:
        rules = load_rules(file)
    except RuleError as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    click.echo(f"ok: {len(rules.rules)} rules: " + ", ".join(r.name for r in rules.rules))


@alerts.command("check-cameras")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--jurisdiction", "jurisdiction_file", default=None, help="GeoJSON jurisdiction tree")
def alerts_check_cameras(file: str, jurisdiction_file: str | None) -> None:
    """Validate a camera registry against the jurisdiction tree; exit 1 naming the camera."""
    from infra.loaders.cameras import load_cameras

    settings = _settings(None, None, jurisdiction_file)
    try:
        registry = load_cameras(file, load_jurisdiction(settings.jurisdiction), strict=True)
    except CameraRegistryError as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    click.echo(f"ok: {len(registry)} cameras")


from infra.cli.security import register as _register_security  # noqa: E402

_register_security(main)

from infra.cli.registry import register as _register_registry  # noqa: E402

_register_registry(main)
from infra.cli.outbound import register as _register_outbound  # noqa: E402

_register_outbound(main)

if __name__ == "__main__":
    main()
