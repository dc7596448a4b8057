"""The registry on both event stores (SQLite and PostgreSQL): seeding from the directory is done
once (a second seed, as from a second hub, registers nothing), the registry's reader returns
exactly the registry's and the dispatch events by topic, and skips everything else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from command_center.registry_state import RegistryState
from domain.registry_service import RegistryService
from infra.bootstrap import SEED_ACTOR, build_service, registry_reader
from infra.loaders.directory import DEFAULT_DIRECTORY, load_directory
from infra.loaders.jurisdiction import load_jurisdiction
from infra.settings import Settings

GRID = "130706001001001"


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    base = Settings().with_(data_dir=tmp_path)
    if request.param == "sqlite":
        yield base
        return
    dsn = request.getfixturevalue("postgres_dsn")
    schema = request.getfixturevalue("pg_schema")
    yield base.with_(store="postgres", postgres_dsn=dsn, postgres_schema=schema)


def test_the_seed_is_written_once_and_the_reader_takes_only_registry_events(
        settings: Settings) -> None:
    jurisdiction = load_jurisdiction(settings.jurisdiction)
    directory = load_directory(DEFAULT_DIRECTORY, jurisdiction, strict=False)
    service = build_service(settings, jurisdiction)
    try:
        registry = RegistryService(service, jurisdiction)
        actor: Any = {"user": "u", "role": "admin", "center": None}
        service.report(actor=actor, grid=GRID, source="hotline", category="noise",
                       severity="routine", description="d", location=None, reporter=None)
        state = RegistryState(registry_reader(service), registry)
        first = state.current()
        seeded = registry.seed(directory, first.parties, first.workers, SEED_ACTOR)
        assert seeded == len(directory.parties) + len(directory.grid_workers) > 0
        # A second hub starting from the same store, with a fresh projection: nothing more.
        again = RegistryState(registry_reader(service), registry).current()
        assert registry.seed(directory, again.parties, again.workers, SEED_ACTOR) == 0
        assert len(again.workers) == len(directory.grid_workers)
        assert again.position == service.recorder.max_notification_id()
        events = registry_reader(service)(0, 100_000)
        types = {e.type for e in events if e.type != "Skip.Skip"}
        assert "Incident.Reported" not in types  # not a registry or dispatch event
        assert {"Party.Registered", "Worker.Appointed", "Worker.Assigned"} <= types
        registry.register_resident(actor=actor, id_number="11010519491231002X", name="张",
                                   phone="13800000000", household="1号", kind="permanent",
                                   grid=GRID, arrived="2026-11-01")
        assert len(state.current().residents) == 1
    finally:
        service.close()
