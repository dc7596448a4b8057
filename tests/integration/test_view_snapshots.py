"""Issue #18, part 6, on SQLite and PostgreSQL: `view?at=` from the nearest stored snapshot equals
a full refold from notification 1 for random times (property test), with event times that are
not monotonic, snapshots thinned to a few per center, and a tail after the last snapshot."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from command_center.audit_api import view_at
from domain.application import IncidentService
from infra.runner.view_snapshots import ViewSnapshots
from infra.security.sealer import build_sealer, stored_reader
from infra.settings import Settings
from infra.store.sqldb import Database
from tests.integration.sealed_store import JURISDICTION, Store, make_history, settings_for

START = datetime(2026, 5, 1, tzinfo=UTC)
STAMP = re.compile(rb'"_data_":"[^"]+"')


# A grid of another township than the first grid's.
OTHER_GRID = next(g.id for g in JURISDICTION.grids() if set(JURISDICTION.centers_for(g.id))
                  != set(JURISDICTION.centers_for(JURISDICTION.grids()[0].id)))


def shuffle_times(store: Store, first: int, last: int, seed: int) -> list[datetime]:
    """Give notifications first..last event times a few seconds apart, out of order."""
    rng = random.Random(seed)
    times = []
    for n in range(first, last + 1):
        when = START + timedelta(seconds=n * 10 + rng.randint(-25, 25),
                                 microseconds=rng.randint(0, 999_999))
        times.append(when)
        state = bytes(store.row(n)[3])
        stamp = f'"_data_":"{when.isoformat()}"'.encode()
        store.run("UPDATE stored_events SET state = ? WHERE {id} = ?",
                  (STAMP.sub(stamp, state, count=1), n))
    return times


def snapshots_for(configured: Settings, service: IncidentService) -> ViewSnapshots:
    return ViewSnapshots(Database.for_settings(configured, configured.sqlite_path),
                         stored_reader(service.recorder, memory=False),
                         [unit.id for unit in JURISDICTION.centers()], every=3, keep=3)


@pytest.fixture(params=["sqlite", "postgres"])
def history(request: pytest.FixtureRequest, tmp_path: Path
            ) -> tuple[Settings, IncidentService, ViewSnapshots, list[datetime]]:
    configured = settings_for(request, tmp_path).with_(seal_checkpoint_every=2)
    make_history(configured, incidents=8).close()  # 24 events
    store = Store(configured)
    times = shuffle_times(store, 1, 24, seed=7)
    service = make_history(configured, incidents=0)
    build_sealer(configured, service.recorder).catch_up()
    snapshots = snapshots_for(configured, service)
    rounds = snapshots.catch_up()
    assert rounds >= 5  # every 3 notifications, at signed heads (every 2)
    # 25..27, signed: folded, not snapshotted; in another township (its events skip the first's)
    make_history(configured, incidents=1, grid=OTHER_GRID).close()
    times += shuffle_times(store, 25, 27, seed=8)
    build_sealer(configured, service.recorder).catch_up()
    assert snapshots.catch_up() >= 1
    assert snapshots.position == 26 and snapshots.snapped == 24  # the tail: 25..26
    make_history(configured, incidents=1, grid=OTHER_GRID).close()  # 28..30: after every head
    times += shuffle_times(store, 28, 30, seed=9)
    return configured, service, snapshots, times


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_view_at_from_snapshots_equals_a_full_refold(
    history: tuple[Settings, IncidentService, ViewSnapshots, list[datetime]],
    data: st.DataObject,
) -> None:
    _, service, snapshots, times = history
    centers = sorted({*JURISDICTION.centers_for(JURISDICTION.grids()[0].id),
                      *JURISDICTION.centers_for(OTHER_GRID)})
    center = data.draw(st.sampled_from(centers))
    at = data.draw(st.one_of(
        st.sampled_from(times),  # exactly an event's time: it is included
        st.datetimes(min_value=(min(times) - timedelta(seconds=30)).replace(tzinfo=None),
                     max_value=(max(times) + timedelta(seconds=30)).replace(tzinfo=None),
                     timezones=st.just(UTC)),
    ))
    assert snapshots.view_at(center, at) == view_at(service, center, at)


def test_view_at_equals_a_full_refold_at_every_event_time_of_every_center(
    history: tuple[Settings, IncidentService, ViewSnapshots, list[datetime]],
) -> None:
    # Each center: two townships' (the second's events are skipped by the first's and by its
    # district's and city's readers only if they truly do not route there), at every event time.
    _, service, snapshots, times = history
    for center in sorted({*JURISDICTION.centers_for(JURISDICTION.grids()[0].id),
                          *JURISDICTION.centers_for(OTHER_GRID)}):
        for at in [*times, max(times) + timedelta(seconds=1)]:
            assert snapshots.view_at(center, at) == view_at(service, center, at), (center, at)


def test_snapshots_stay_bounded_per_center(
    history: tuple[Settings, IncidentService, ViewSnapshots, list[datetime]],
) -> None:
    configured, service, snapshots, _ = history
    with snapshots.db.tx() as tx:
        counts = tx.execute("SELECT center, COUNT(*) FROM linkage_view_snapshots "
                            "GROUP BY center")
        heads = {int(n) for (n,) in tx.execute("SELECT notification_id FROM linkage_seal_heads")}
        positions = {int(p) for (p,) in tx.execute(
            "SELECT DISTINCT position FROM linkage_view_snapshots")}
    assert counts and all(int(count) <= 3 for _, count in counts)
    assert positions <= heads  # taken at signed tree heads only
    # A new follower resumes from the last snapshot round, not from notification 1.
    again = snapshots_for(configured, service)
    assert again.step() == 26 and again.step() is None
    assert again._states is not None and snapshots._states is not None
    assert {c: s.view for c, s in again._states.items()} == {
        c: s.view for c, s in snapshots._states.items()}
