"""`linkage outbound`: subscriptions of outbound alerts, their deliveries and dead letters."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from infra.settings import Settings

_data_dir = click.option("--data-dir", default=None, help="LINKAGE_DATA_DIR (var)")
_store = click.option("--store", type=click.Choice(["sqlite", "postgres"]), default=None)


def _settings(data_dir: str | None, store: str | None) -> Settings:
    return Settings().with_(data_dir=Path(data_dir) if data_dir else None, store=store)


def _centers(settings: Settings) -> list[str]:
    from infra.loaders.jurisdiction import load_jurisdiction

    return [u.id for u in load_jurisdiction(settings.jurisdiction).centers()]


def register(main: click.Group) -> None:
    main.add_command(outbound)


@click.group()
def outbound() -> None:
    """Outbound alerts: signed JSON webhooks and CAP 1.2 to other systems (README)."""


@outbound.command("add")
@click.option("--name", required=True, help="subscription name (letters, digits, _.-)")
@click.option("--url", required=True, help="the receiver's http(s) URL")
@click.option("--format", "fmt", type=click.Choice(["json", "cap"]), default="json")
@click.option("--event", "events", multiple=True, required=True,
              help="event kind (repeatable): major_reported, escalated_district, "
                   "escalated_city, supervision_overdue, rule_fired, storm_started; or "
                   "tree_head_signed alone (JSON, no centers: every signed tree head)")
@click.option("--center", "centers", multiple=True, help="only these centers (repeatable)")
@click.option("--secret", default=None,
              help="HMAC-SHA256 key shared with the receiver (made and shown once if not given)")
@_data_dir
@_store
def outbound_add(name: str, url: str, fmt: str, events: tuple[str, ...],
                 centers: tuple[str, ...], secret: str | None, data_dir: str | None,
                 store: str | None) -> None:
    """Subscribe a receiver to kinds of events (from now on)."""
    import msgspec

    from infra.outbound.subscriptions import Subscription, SubscriptionError, check, new_secret
    from infra.outbound.wiring import outbound_store

    settings = _settings(data_dir, store)
    shown = secret is None
    try:
        subscription = check(msgspec.convert(
            {"name": name, "url": url, "format": fmt, "events": list(events),
             "centers": list(centers), "secret": secret or new_secret()}, Subscription),
            _centers(settings))
    except (msgspec.ValidationError, SubscriptionError) as exc:
        raise click.ClickException(f"invalid subscription: {exc}") from None
    if not outbound_store(settings).add(subscription):
        raise click.ClickException(f"a subscription named {name!r} exists already; remove it "
                                   "first (linkage outbound remove)")
    click.echo(f"added {name}: {fmt} to {url} for {', '.join(events)}")
    if shown:
        click.echo(f"secret (shown once; the receiver checks X-Linkage-Signature with it): "
                   f"{subscription.secret}")


@outbound.command("remove")
@click.argument("name")
@_data_dir
@_store
def outbound_remove(name: str, data_dir: str | None, store: str | None) -> None:
    """Remove a subscription added with `outbound add` (its pending deliveries stop)."""
    from infra.outbound.wiring import outbound_store

    if not outbound_store(_settings(data_dir, store)).remove(name):
        click.echo(f"no subscription named {name!r} was added with `outbound add`", err=True)
        sys.exit(1)
    click.echo(f"removed {name}")


@outbound.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def outbound_check(file: str) -> None:
    """Validate a subscriptions file (LINKAGE_OUTBOUND_FILE); exit 1 naming the problem."""
    from infra.outbound.subscriptions import SubscriptionError, load

    try:
        found = load(file, _centers(Settings()))
    except SubscriptionError as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    click.echo(f"ok: {len(found)} subscriptions: " + ", ".join(s.name for s in found))


def _read_only_store(settings: Settings):  # type: ignore[no-untyped-def]
    """The outbound store without creating anything (None when there is none yet)."""
    from infra.outbound.wiring import outbound_store

    if settings.store == "sqlite":
        path = settings.data_dir / "outbound.db"
        if not path.exists():
            return None
        import sqlite3

        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            found = conn.execute("SELECT name FROM sqlite_master WHERE name = "
                                 "'linkage_outbound_deliveries'").fetchall()
        if not found:
            return None
    store = outbound_store(settings, create=False)
    try:
        store.position("outbound")
    except Exception:  # no tables yet (PostgreSQL)
        return None
    return store


@outbound.command("status")
@_data_dir
@_store
def outbound_status(data_dir: str | None, store: str | None) -> None:
    """Deliveries per subscription: pending, delivered, dead, the oldest waiting (read-only)."""
    from infra.outbound.deliverer import HEADS_SCAN

    settings = _settings(data_dir, store)
    found = _read_only_store(settings)
    if found is None:
        click.echo("no outbound deliveries yet")
        return
    click.echo(f"scanned up to notification {found.position('outbound') or 0}")
    heads = found.position(HEADS_SCAN)
    if heads is not None:
        click.echo(f"signed tree heads scanned up to tree size {heads}")
    tallies = found.tallies()
    if not tallies:
        click.echo("no deliveries yet")
    for tally in tallies:
        waiting = (f", oldest waiting {time.time() - tally.oldest_pending:.0f}s"
                   if tally.oldest_pending is not None else "")
        error = f", last error: {tally.last_error}" if tally.last_error else ""
        click.echo(f"{tally.subscription}: pending={tally.pending} delivered={tally.delivered} "
                   f"dead={tally.dead}{waiting}{error}")


@outbound.command("dead")
@click.option("--subscription", default=None)
@_data_dir
@_store
def outbound_dead(subscription: str | None, data_dir: str | None, store: str | None) -> None:
    """List dead letters (deliveries that ran out of attempts), oldest first (read-only)."""
    found = _read_only_store(_settings(data_dir, store))
    letters = found.dead_letters(subscription) if found is not None else []
    if not letters:
        click.echo("no dead letters")
    for name, notification_id, subject, attempts, error in letters:
        click.echo(f"{name}:{notification_id} {subject} attempts={attempts} {error or ''}")


@outbound.command("retry")
@click.argument("subscription")
@_data_dir
@_store
def outbound_retry(subscription: str, data_dir: str | None, store: str | None) -> None:
    """Send a subscription's dead letters again (in event order)."""
    from infra.outbound.wiring import outbound_store

    count = outbound_store(_settings(data_dir, store)).retry_dead(subscription)
    click.echo(f"{count} dead letters of {subscription} are pending again")
