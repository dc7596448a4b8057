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
from tests.integration.sealed_store import ACTOR, JURISDICTION, Store, make_history, settings_for

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
    # As `linkage serve` keeps them: on SQLite in a file of their own, beside the heads.
    return ViewSnapshots(Database.for_settings(configured, configured.snapshots_path),
                         stored_reader(service.recorder, memory=False),
                         [unit.id for unit in JURISDICTION.centers()], every=3, keep=3,
                         heads=Database.for_settings(configured, configured.sqlite_path))


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
    with snapshots.heads.tx() as tx:
        heads = {int(n) for (n,) in tx.execute("SELECT notification_id FROM linkage_seal_heads")}
    with snapshots.db.tx() as tx:
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


def test_a_round_stores_only_the_cases_that_changed(
    history: tuple[Settings, IncidentService, ViewSnapshots, list[datetime]],
) -> None:
    """A snapshot round writes each changed center's view and the case records that changed
    since its last round, not every open case again: its size follows what changed, not how
    many cases are open. Each center's cases at its latest snapshot are the current versions."""
    configured, service, snapshots, _ = history
    grid = JURISDICTION.grids()[0].id
    first_township = JURISDICTION.centers_for(grid)[-1]
    open_cases = len(snapshots._states[first_township].cases)  # type: ignore[index]
    assert open_cases >= 8
    with snapshots.db.tx() as tx:
        before = int(tx.execute("SELECT COUNT(*) FROM linkage_view_snapshot_cases")[0][0])
    snapped = snapshots.snapped
    incident = service.report(actor=ACTOR, grid=grid, source="hotline", category="noise",
                              severity="routine", description="one more")
    service.act(str(incident.id), "accept", actor=ACTOR)
    service.act(str(incident.id), "dispatch", actor=ACTOR,
                assignee={"kind": "department", "id": "water"}, due="2030-01-01T00:00:00Z",
                due_reason="a long-term works contract")
    build_sealer(configured, service.recorder).catch_up()
    assert snapshots.catch_up() >= 1
    with snapshots.db.tx() as tx:
        rows = tx.execute("SELECT center, case_id, since_pos, until_pos FROM "
                          "linkage_view_snapshot_cases")
        latest = {center: int(position) for center, position in tx.execute(
            "SELECT center, MAX(position) FROM linkage_view_snapshots GROUP BY center")}
    # Each round since stored the records of the incidents its events belong to (the new
    # one, and the two reported in the other township after the last round), once in each of
    # their centers; the 8 open ones of the first township were stored before, not again.
    rounds = sorted({int(since) for _, _, since, _ in rows if int(since) > snapped})
    assert rounds and rounds[-1] == snapshots.snapped
    events = service.recorder.select_notifications(start=snapped + 1, limit=100)
    previous, stored = snapped, 0
    for position in rounds:
        versions = [(center, case_id) for center, case_id, since, _ in rows
                    if int(since) == position]
        changed = {str(n.originator_id) for n in events if previous < n.id <= position}
        assert {case_id for _, case_id in versions} == changed, position
        assert len(versions) <= 3 * len(changed)  # city, district, township
        previous, stored = position, stored + len(versions)
    assert str(incident.id) in {case_id for _, case_id, *_ in rows}
    assert len(rows) <= before + stored  # nothing else stored
    with snapshots.db.tx() as tx:
        kept: dict[str, list[int]] = {}
        for center, position in tx.execute("SELECT center, position FROM linkage_view_snapshots"):
            kept.setdefault(center, []).append(int(position))
    # Thinning (keep = 3) dropped the versions no kept snapshot needs, and only those.
    for center, case_id, since, until in rows:
        assert any(int(since) <= q and (until is None or q < int(until))
                   for q in kept[center]), (center, case_id, since, until)
    for center, state in snapshots._states.items():  # type: ignore[union-attr]
        current = {case_id for c, case_id, since, until in rows
                   if c == center and until is None}
        if center in latest:
            assert current == {case["id"] for case in state.cases}, center


def test_snapshots_stored_with_their_cases_inline_still_serve(
    history: tuple[Settings, IncidentService, ViewSnapshots, list[datetime]],
) -> None:
    """A store whose snapshots hold their open cases inline (written before the cases table)
    answers `view?at=` as a full refold does, and a follower resumes from it and stores its
    next rounds' cases in the table."""
    import orjson

    configured, service, snapshots, times = history
    with snapshots.db.tx() as tx:
        for center, position, blob in tx.execute(
                "SELECT center, position, state FROM linkage_view_snapshots"):
            cases = [orjson.loads(bytes(s)) for (s,) in tx.execute(
                "SELECT state FROM linkage_view_snapshot_cases WHERE center = ? AND "
                "since_pos <= ? AND (until_pos IS NULL OR until_pos > ?)",
                (center, position, position))]
            inline = {**orjson.loads(bytes(blob)), "cases": cases}
            tx.execute("UPDATE linkage_view_snapshots SET state = ? WHERE center = ? AND "
                       "position = ?", (orjson.dumps(inline), center, position))
        tx.execute("DELETE FROM linkage_view_snapshot_cases")
    old = snapshots_for(configured, service)
    grid = JURISDICTION.grids()[0].id
    for center in JURISDICTION.centers_for(grid):
        for at in times[::4]:
            assert old.view_at(center, at) == view_at(service, center, at), (center, at)
    assert old.step() == 26
    make_history(configured, incidents=2).close()
    build_sealer(configured, service.recorder).catch_up()
    assert old.catch_up() >= 1
    with old.db.tx() as tx:
        stored = int(tx.execute("SELECT COUNT(*) FROM linkage_view_snapshot_cases")[0][0])
    assert stored >= 10  # the first township's open cases, now in the table
    for center in JURISDICTION.centers_for(grid):
        assert old.view_at(center, max(times) + timedelta(days=3650)) == view_at(
            service, center, max(times) + timedelta(days=3650))
