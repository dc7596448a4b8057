"""`linkage token`, `linkage feed-key` and `linkage audit`: identity, feed keys, the sealed history."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from infra.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from infra.security.seal_snapshot import SealSnapshot

_data_dir = click.option("--data-dir", default=None, help="LINKAGE_DATA_DIR (var)")
_store = click.option("--store", type=click.Choice(["sqlite", "postgres"]), default=None)


def _settings(data_dir: str | None, store: str | None) -> Settings:
    settings = Settings().with_(data_dir=Path(data_dir) if data_dir else None, store=store)
    # On PostgreSQL these commands act on a distributed deployment: its shared keys, never
    # ones made up under this machine's data dir.
    return settings.with_(keys_from_settings=settings.store == "postgres")


def _service(settings: Settings):  # type: ignore[no-untyped-def]
    from infra.bootstrap import build_service
    from infra.loaders.jurisdiction import load_jurisdiction

    jurisdiction = load_jurisdiction(settings.jurisdiction)
    return jurisdiction, build_service(settings, jurisdiction)


def register(main: click.Group) -> None:
    main.add_command(token)
    main.add_command(feed_key)
    main.add_command(audit)


@click.group()
def token() -> None:
    """Bearer tokens for local use (HS256, LINKAGE_JWT_SECRET or a secret under the data dir)."""


@token.command("issue")
@click.option("--user", required=True, help="user id (the token's sub)")
@click.option("--role", required=True, type=click.Choice(
    ["city_officer", "district_officer", "township_officer", "department", "grid_worker",
     "auditor", "feed", "admin"]))
@click.option("--center", default=None,
              help="home center at the role's level: an officer's city/district/township, "
                   "a grid worker's grid or township")
@click.option("--department", default=None, help="department id (role department)")
@click.option("--ttl", type=int, default=None, help="seconds until expiry (LINKAGE_TOKEN_TTL)")
@_data_dir
@_store
def token_issue(user: str, role: str, center: str | None, department: str | None,
                ttl: int | None, data_dir: str | None, store: str | None) -> None:
    """Print a signed token (recorded in the event store: --store postgres in distributed mode)."""
    from domain.access import home_problem
    from infra.security.audit import record_cli
    from infra.security.tokens import Tokens

    settings = _settings(data_dir, store)
    jurisdiction, service = _service(settings)
    if center is not None and center not in jurisdiction:
        raise click.BadParameter(f"{center!r} is not in the jurisdiction tree", param_hint="--center")
    needs_center = ("city_officer", "district_officer", "township_officer", "grid_worker")
    if role in needs_center and center is None:
        raise click.BadParameter(f"a {role} needs --center (their home center)",
                                 param_hint="--center")
    if role == "department" and not department:
        raise click.BadParameter("a department handler needs --department", param_hint="--department")
    misplaced = home_problem(role, center, jurisdiction)
    if misplaced is not None:
        raise click.BadParameter(misplaced, param_hint="--center")
    try:
        issued = Tokens(settings, jurisdiction).issue(user, role, center, department=department,
                                                      ttl=ttl)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    record_cli(service, "token issue", user=user, role=role, center=center, department=department)
    service.close()
    click.echo(issued)


@click.group("feed-key")
def feed_key() -> None:
    """API keys for feeds (cameras, sensors): stored hashed, revocable."""


@feed_key.command("issue")
@click.option("--feed", required=True, help="feed name, e.g. camera-gate-3")
@click.option("--center", default=None, help="limit the feed to reports within this center")
@click.option("--shared", is_flag=True, help="let this key share a feed name that a key of another "
              "center uses (the keys then address the same alerts)")
@_data_dir
@_store
def feed_key_issue(feed: str, center: str | None, shared: bool, data_dir: str | None,
                   store: str | None) -> None:
    """Create a key; it is printed once and only its digest is kept."""
    from infra.security.api_keys import ApiKeys, FeedNameTaken
    from infra.security.audit import record_cli

    settings = _settings(data_dir, store)
    jurisdiction, service = _service(settings)
    if center is not None and center not in jurisdiction:
        raise click.BadParameter(f"{center!r} is not in the jurisdiction tree", param_hint="--center")
    try:
        key_id, key = ApiKeys.for_settings(settings).issue(feed, center, shared=shared)
    except FeedNameTaken as exc:
        service.close()
        raise click.ClickException(str(exc)) from None
    record_cli(service, "feed-key issue", feed=feed, center=center, key_id=key_id, shared=shared)
    service.close()
    click.echo(f"key id {key_id} for feed {feed}; send it as header X-API-Key:")
    click.echo(key)


@feed_key.command("revoke")
@click.argument("key_id")
@_data_dir
@_store
def feed_key_revoke(key_id: str, data_dir: str | None, store: str | None) -> None:
    """Revoke a key by its id: refused at once over HTTP, its open feed sockets closed (1008)."""
    from infra.security.api_keys import ApiKeys
    from infra.security.audit import record_cli

    settings = _settings(data_dir, store)
    _, service = _service(settings)
    revoked = ApiKeys.for_settings(settings).revoke(key_id)
    record_cli(service, "feed-key revoke", key_id=key_id, revoked=revoked)
    service.close()
    if not revoked:
        raise click.ClickException(f"no active key with id {key_id!r}")
    click.echo(f"revoked {key_id}; servers close its open feed sockets within "
               f"{settings.revocation_poll:g}s (LINKAGE_REVOCATION_POLL)")


@feed_key.command("list")
@_data_dir
@_store
def feed_key_list(data_dir: str | None, store: str | None) -> None:
    """List keys (ids, feeds, centers, revocation); never the secrets."""
    from infra.security.api_keys import ApiKeys

    for info in ApiKeys.for_settings(_settings(data_dir, store)).list():
        state = f"revoked {info.revoked_at}" if info.revoked_at else "active"
        click.echo(f"{info.key_id}\t{info.feed}\t{info.center or '-'}\t{info.created_at}\t{state}")


@click.group()
def audit() -> None:
    """The tamper-evident history: verify the seal chain, export it (both read-only)."""


@contextlib.contextmanager
def _read_snapshot(settings: Settings) -> Iterator[SealSnapshot]:
    """The store's read-only snapshot; a missing or unreachable store is a clear error."""
    import psycopg

    from infra.security.seal_snapshot import SealSnapshot, StoreMissing

    try:
        with SealSnapshot.for_settings(settings) as snapshot:
            yield snapshot
    except StoreMissing as exc:
        raise click.ClickException(str(exc)) from None
    except (sqlite3.Error, psycopg.Error) as exc:
        raise click.ClickException(f"cannot read the event store: {exc}") from None


@audit.command("verify")
@_data_dir
@_store
@click.option("--postgres-schema", default=None)
@click.option("--expect-head", "expect_head", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="signed heads kept elsewhere: a head from `audit export-head` "
              "or the LINKAGE_SEAL_WITNESS file; each must still be on the chain")
@click.option("--witness", "witness", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="the LINKAGE_SEAL_WITNESS file (kept outside the data dir): the "
              "store must still hold a tree consistent with every signed tree head in it, and "
              "the chain every checkpoint head")
@click.option("--strict", is_flag=True, help="exit 3 when events are not sealed yet")
def audit_verify(data_dir: str | None, store: str | None, postgres_schema: str | None,
                 expect_head: Path | None, witness: Path | None, strict: bool) -> None:
    """Recompute the chain, read-only; exit 1 naming what was tampered with (see README)."""
    from infra.security.tree_head import TreeHead, read_tree_heads
    from infra.security.tree_verification import check_stored_tree, check_tree_heads
    from infra.security.verification import NoSealKey, verify
    from infra.security.witness import HeadFileError, read_heads

    settings = _settings(data_dir, store).with_(postgres_schema=postgres_schema)
    if expect_head is not None and witness is not None:
        raise click.UsageError("give --expect-head or --witness, not both")
    heads = []
    tree_heads: list[tuple[int, TreeHead]] = []
    source = expect_head or witness
    if source is not None:
        option = "--witness" if witness is not None else "--expect-head"
        try:
            heads = read_heads(source)
            if witness is not None:
                tree_heads = read_tree_heads(witness)
        except HeadFileError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None
    key, key_path = _public_key(settings)
    with _read_snapshot(settings) as snapshot:
        try:
            result = None
            if tree_heads:
                if key is None:
                    raise NoSealKey("signed tree heads cannot be checked without the seal key")
                result = check_tree_heads(snapshot, key, tree_heads, str(witness))
            if result is None:
                result = verify(snapshot, key, heads, source=str(source))
            if result.ok:  # the tree heads the store holds must hold for its events as well
                result = check_stored_tree(snapshot, key) or result
        except NoSealKey as exc:
            raise click.ClickException(f"{exc}: no seal key at {key_path} (LINKAGE_SEAL_KEY)"
                                       ) from None
    if result.ok and tree_heads:
        latest = max(h.tree_size for _, h in tree_heads)
        result = dataclasses.replace(result, message=(
            f"{result.message}; the tree is consistent with {len(tree_heads)} signed tree heads "
            f"from {witness} (the latest: {latest} events)"))
    if not result.ok:
        click.echo(f"TAMPERED: {result.message}", err=True)
        sys.exit(1)
    click.echo(result.message)
    if result.unsealed is not None:
        click.echo(str(result.unsealed), err=strict)
        if strict:
            sys.exit(3)


def _public_key(settings: Settings) -> tuple[Ed25519PublicKey | None, Path]:
    """The seal key's public half, read-only (absent: None), and where it was looked for."""
    from infra.security.sealer import load_public_key

    try:
        return load_public_key(settings)
    except ValueError as exc:
        raise click.ClickException(f"seal key: {exc}") from None


def _bounds(snapshot: SealSnapshot, start: str | None, stop: str | None) -> tuple[int, int]:
    """Notification ids from `--from`/`--to`, each a notification id or an ISO 8601 time."""
    from datetime import datetime

    from infra.security.seal_snapshot import LAST
    from projections.envelope import from_stored

    def as_time(value: str, option: str) -> datetime:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is neither a notification id nor an ISO 8601 "
                                     "time", param_hint=option) from None
        if when.tzinfo is None:
            raise click.BadParameter(f"{value!r} needs a time zone, e.g. +08:00",
                                     param_hint=option)
        return when

    first = int(start) if start is not None and start.isdigit() else None
    last = int(stop) if stop is not None and stop.isdigit() else None
    if (start is not None and first is None) or (stop is not None and last is None):
        after = as_time(start, "--from") if start is not None and first is None else None
        before = as_time(stop, "--to") if stop is not None and last is None else None
        ids = []
        for event in snapshot.events():
            at = datetime.fromisoformat(from_stored(event.id, event.originator_id,
                                                    event.originator_version, event.topic,
                                                    event.state).at)
            if (after is None or at >= after) and (before is None or at <= before):
                ids.append(event.id)
        if not ids:
            raise click.ClickException("no event lies between --from and --to")
        first = ids[0] if after is not None else first
        last = ids[-1] if before is not None else last
    return first or 1, last if last is not None else LAST


@audit.command("export")
@click.option("--from", "start", default=None, help="first notification id or ISO 8601 time")
@click.option("--to", "stop", default=None, help="last notification id or ISO 8601 time")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="-")
@_data_dir
@_store
@click.option("--postgres-schema", default=None)
def audit_export(start: str | None, stop: str | None, output: str, data_dir: str | None,
                 store: str | None, postgres_schema: str | None) -> None:
    """JSON Lines: each sealed event with its chain hashes, then the signed checkpoints."""
    from infra.security.seal_export import export

    settings = _settings(data_dir, store).with_(postgres_schema=postgres_schema)
    key, key_path = _public_key(settings)
    if key is None:
        raise click.ClickException(f"no seal key at {key_path} (LINKAGE_SEAL_KEY): an export "
                                   "names the key its checkpoints are signed with")
    with _read_snapshot(settings) as snapshot:
        first, last = _bounds(snapshot, start, stop)
        with click.open_file(output, "wb") as out:
            for record in export(snapshot, key, first, last):
                out.write(orjson.dumps(record) + b"\n")


@audit.command("export-head")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="-")
@click.option("--tree", is_flag=True, help="the latest signed tree head instead (for "
              "`audit verify --witness` and tools/verify_audit.py)")
@_data_dir
@_store
@click.option("--postgres-schema", default=None)
def audit_export_head(output: str, tree: bool, data_dir: str | None, store: str | None,
                      postgres_schema: str | None) -> None:
    """Print the latest signed checkpoint (one JSON line) to keep outside the data dir."""
    from infra.security.merkle_store import TreeReader
    from infra.security.seal_export import latest_head
    from infra.security.tree_head import encode as encode_tree
    from infra.security.witness import encode

    settings = _settings(data_dir, store).with_(postgres_schema=postgres_schema)
    if tree:
        with _read_snapshot(settings) as snapshot:
            tree_head = TreeReader(snapshot.query).head()
        if tree_head is None:
            raise click.ClickException("no signed tree head yet: the sealer signs one every "
                                       "LINKAGE_SEAL_CHECKPOINT_EVERY events")
        with click.open_file(output, "wb") as out:
            out.write(encode_tree(tree_head))
        return
    with _read_snapshot(settings) as snapshot:
        head = latest_head(snapshot)
    if head is None:
        raise click.ClickException("no signed checkpoint yet: the sealer signs one every "
                                   "LINKAGE_SEAL_CHECKPOINT_EVERY events")
    with click.open_file(output, "wb") as out:
        out.write(encode(head))


@audit.command("prove")
@click.option("--notification", type=click.IntRange(1, 2**62), default=None,
              help="prove this notification is in a signed tree head")
@click.option("--tree-size", type=click.IntRange(1, 2**62), default=None,
              help="with --notification: the signed head of this size (default: the first "
              "that covers it)")
@click.option("--from", "first", type=click.IntRange(1, 2**62), default=None,
              help="prove the signed head of this size is a prefix of --to's")
@click.option("--to", "second", type=click.IntRange(1, 2**62), default=None)
@click.option("--incident", default=None, help="every event of this incident, with its proof")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="-")
@_data_dir
@_store
@click.option("--postgres-schema", default=None)
def audit_prove(notification: int | None, tree_size: int | None, first: int | None,
                second: int | None, incident: str | None, output: str, data_dir: str | None,
                store: str | None, postgres_schema: str | None) -> None:
    """Print a Merkle proof as JSON (docs/AUDIT-FORMAT.md; check it with tools/verify_audit.py).
    Read-only."""
    from uuid import UUID

    from infra.security import proofs
    from infra.security.sealer import public_pem

    asked = [notification is not None, first is not None or second is not None,
             incident is not None]
    if sum(asked) != 1:
        raise click.UsageError("give one of --notification N, --from S1 --to S2, --incident ID")
    if tree_size is not None and notification is None:
        raise click.UsageError("--tree-size goes with --notification")
    if asked[1] and (first is None or second is None):
        raise click.UsageError("a consistency proof needs both --from and --to")
    if first is not None and second is not None and first > second:
        raise click.BadParameter(f"{first} is after --to {second}", param_hint="--from")
    if incident is not None:
        try:
            UUID(incident)
        except ValueError:
            raise click.BadParameter(f"{incident!r} is not an incident id (a UUID)",
                                     param_hint="--incident") from None
    settings = _settings(data_dir, store).with_(postgres_schema=postgres_schema)
    key, key_path = _public_key(settings)
    if key is None:
        raise click.ClickException(f"no seal key at {key_path} (LINKAGE_SEAL_KEY): a proof "
                                   "names the key its tree heads are signed with")
    pem = public_pem(key)
    with _read_snapshot(settings) as snapshot:
        try:
            if notification is not None:
                answer = proofs.inclusion(snapshot, key, pem, notification, tree_size)
            elif incident is not None:
                answer = proofs.incident_bundle(snapshot, key, pem, incident)
                if not answer["events"] and not answer["unproved"]:
                    raise proofs.ProofUnavailable(f"no event of incident {incident} is stored")
            else:
                assert first is not None and second is not None
                answer = proofs.consistency(snapshot, key, pem, first, second)
        except proofs.ProofUnavailable as exc:
            raise click.ClickException(str(exc).strip("'\"")) from None
    with click.open_file(output, "wb") as out:
        out.write(orjson.dumps(answer, option=orjson.OPT_INDENT_2) + b"\n")
