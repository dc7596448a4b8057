"""`linkage replay --mode distributed`: start a new worker generation and follow its rebuild."""

from __future__ import annotations

import asyncio
import time

import click

from infra.distributed import rebuild
from infra.distributed.generation import WorkerGeneration
from infra.distributed.generation import app_id as worker_app_id
from infra.distributed.relay import RelayPosition
from infra.settings import Settings


def replay_distributed(settings: Settings, wait: bool, force: bool = False,
                       every: float = 0.5) -> None:
    """Rebuild the views the hubs serve under new epochs; with `wait`, until every center that
    had a view serves the new one. `force` skips the check that the worker group is empty."""
    from rich.progress import Progress

    from infra.bootstrap import build_service
    from infra.loaders.jurisdiction import load_jurisdiction
    from infra.runtime.preflight import ServiceUnreachable, check

    settings = settings.with_(store="postgres")
    try:
        check(settings, "postgres", "kafka", "redis")
    except ServiceUnreachable as exc:
        raise click.ClickException(str(exc)) from None
    generations = WorkerGeneration(settings.postgres_dsn, settings.postgres_schema)
    try:
        current = worker_app_id(settings.worker_id, generations.load(settings.worker_id))
        members = None if force else asyncio.run(rebuild.group_members(settings.kafka_bootstrap,
                                                                       current))
        if members:
            raise click.ClickException(
                f"the worker group {current} has {members} live member(s); stop every "
                "`linkage worker` first (a rebuild starts a new group, which they would not join), "
                "or pass --force if they are stopped and the broker still lists them")
        if members is None and not force:
            click.echo(f"warning: the broker does not say whether worker group {current} has "
                       "members; make sure every `linkage worker` is stopped", err=True)
        start = asyncio.run(rebuild.log_start(settings.kafka_bootstrap, settings.kafka_topic))
        if start:  # retention dropped the first events: the relay must produce them again
            position = RelayPosition(settings.postgres_dsn, settings.relay_name,
                                     settings.postgres_schema)
            position.save(0, {})
            position.close()
            click.echo(f"{settings.kafka_topic} starts at offset {start}: relay position reset "
                       "to 0; restart `linkage relay` so that it produces the whole log again")
        generation = generations.bump(settings.worker_id)
    finally:
        generations.close()
    new = worker_app_id(settings.worker_id, generation)
    click.echo(f"worker group {new} (generation {generation}) will rebuild every view from "
               f"the first event of {settings.kafka_topic}: start `linkage worker` now")
    click.echo("old-generation topics, to delete once the rebuild is done: "
               + ", ".join(rebuild.old_topics(current)))
    centers = [unit.id for unit in load_jurisdiction(settings.jurisdiction).centers()]
    before = asyncio.run(rebuild.served(settings.redis_url, settings.redis_prefix, centers))
    if not wait:
        return
    service = build_service(settings, load_jurisdiction(settings.jurisdiction))
    try:
        with Progress() as progress:
            task = progress.add_task("centers on the new epoch", total=len(before))
            while True:
                now = asyncio.run(rebuild.served(settings.redis_url, settings.redis_prefix,
                                                 centers))
                done = rebuild.replaced(before, now)
                last = service.recorder.max_notification_id() or 0
                behind = min((now[c].position for c in before if c not in done and c in now),
                             default=last)
                progress.update(task, completed=len(done), description=(
                    f"centers on the new epoch (store at {last}, "
                    f"oldest view still served at {behind})"))
                if len(done) == len(before):
                    break
                time.sleep(every)
    finally:
        service.close()
    click.echo(f"rebuilt: {len(before)} centers serve epochs of worker group {new}")
