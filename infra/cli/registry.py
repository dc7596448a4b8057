"""`linkage registry import residents|workers|parties FILE.csv` and `linkage registry export`."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from infra.settings import Settings

MAX_FIELD = 4096  # characters in one CSV field; longer is not a registry value


def _settings(data_dir: str | None, store: str | None) -> Settings:
    return Settings().with_(data_dir=Path(data_dir) if data_dir else None, store=store)


@click.group()
def registry() -> None:
    """The grid registry: import residents, grid workers and parties; export figures."""


def _rows(reader: Any) -> Iterator[tuple[int, dict[str, str]]]:
    for row in reader:
        yield reader.line_num, row


@registry.command("import")
@click.argument("kind", type=click.Choice(["residents", "workers", "parties"]))
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--data-dir", default=None, help="where the SQLite stores live (LINKAGE_DATA_DIR)")
@click.option("--store", type=click.Choice(["sqlite", "postgres"]), default=None)
@click.option("--user", default="registry-import", help="the user the events name")
def registry_import(kind: str, file: str, data_dir: str | None, store: str | None,
                    user: str) -> None:
    """Import a CSV file (UTF-8, a header row). Good rows are kept, each bad row is reported
    with its line number; importing the same file again changes nothing. Exit status 1 when
    any row was refused."""
    from rich.progress import Progress

    from domain.incident import Actor
    from domain.registry_import import Importer, check_header
    from domain.registry_service import RegistryService
    from infra.bootstrap import build_service
    from infra.loaders.jurisdiction import load_jurisdiction

    settings = _settings(data_dir, store)
    csv.field_size_limit(MAX_FIELD)
    path = Path(file)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        total = max(sum(1 for _ in handle) - 1, 0)
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    service = build_service(settings, jurisdiction)
    actor: Actor = {"user": user, "role": "admin", "center": None}
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            problem = check_header(kind, reader.fieldnames or [])
            if problem:
                raise click.ClickException(f"{path}: line 1: {problem}")
            importer = Importer(RegistryService(service, jurisdiction), actor)
            with Progress(transient=not sys.stderr.isatty()) as progress:
                task = progress.add_task(f"importing {kind}", total=total)
                try:
                    report = importer.run(kind, _rows(reader),
                                          lambda n: progress.advance(task, n))
                except csv.Error as exc:
                    raise click.ClickException(
                        f"{path}: line {reader.line_num}: not valid CSV: {exc}") from None
    finally:
        service.close()
    for line, message in report.errors:
        click.echo(f"{path}:{line}: {message}", err=True)
    click.echo(f"{kind}: {report.saved} saved, {report.unchanged} unchanged, "
               f"{len(report.errors)} refused, of {report.rows} rows")
    if report.errors:
        sys.exit(1)


def register(main: click.Group) -> None:
    main.add_command(registry)
