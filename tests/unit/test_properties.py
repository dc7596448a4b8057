"""Properties over random command sequences (hypothesis).

- Replaying the whole history from scratch gives the live views.
- A snapshot taken at any moment plus the deltas after it gives the view.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from command_center.hub import Hub
from domain.application import IncidentService
from domain.incident import DomainError
from infra.bootstrap import notification_reader
from infra.runner.embedded import EmbeddedRunner
from infra.store.view_store import MemoryViewStore
from projections.center_view import new_view
from projections.patch import apply_changes

GRIDS = {
    "g-a1": ["town-a", "district-1", "city"],
    "g-a2": ["town-a", "district-1", "city"],
    "g-b1": ["town-b", "district-1", "city"],
    "g-c1": ["town-c", "district-2", "city"],
}
CENTERS = ["city", "district-1", "district-2", "town-a", "town-b", "town-c"]
ACTOR = {"user": "prop", "role": "admin", "center": None}

ACTIONS: dict[str, dict[str, Any]] = {
    "accept": {},
    "reject": {"reason": "no"},
    "dispatch": {"assignee": {"kind": "department", "id": "d1"}, "due": "2026-12-01T00:00:00+00:00"},
    "return": {"reason": "not ours"},
    "transfer": {"assignee": {"kind": "department", "id": "d2"}},
    "acknowledge": {},
    "progress": {"note": "working"},
    "resolve": {"outcome": "done"},
    "return-visit": {"satisfaction": 2},
    "reopen": {},
    "close": {},
}

command = st.one_of(
    st.tuples(st.just("report"), st.sampled_from(sorted(GRIDS))),
    st.tuples(st.sampled_from(sorted(ACTIONS)), st.integers(0, 20)),
    st.tuples(st.just("fold"), st.just(0)),
    st.tuples(st.just("snapshot"), st.sampled_from(CENTERS)),
)


def new_service() -> IncidentService:
    return IncidentService(lambda grid: GRIDS[grid], env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def run(commands: list[tuple[str, Any]]) -> tuple[IncidentService, EmbeddedRunner, Hub, dict[str, Any]]:
    service = new_service()
    hub = Hub(queue_size=100_000)
    runner = EmbeddedRunner(notification_reader(service), MemoryViewStore(), CENTERS, hub,
                            batch_size=7, checkpoint_every=0)
    incidents: list[str] = []
    snapshots: dict[str, Any] = {}
    subs = {center: hub.subscribe(center) for center in CENTERS}
    for kind, arg in commands:
        if kind == "report":
            incident = service.report(actor=ACTOR, grid=arg, source="hotline", category="noise",
                                      severity="routine", description="d", location=None,
                                      reporter=None)
            incidents.append(str(incident.id))
        elif kind == "fold":
            runner.process_batch()
        elif kind == "snapshot":
            if arg not in snapshots:
                _epoch, seq, view = runner.snapshot(arg)
                snapshots[arg] = (seq, copy.deepcopy(view))
        elif incidents:
            with contextlib.suppress(DomainError):
                service.act(incidents[arg % len(incidents)], kind, actor=ACTOR, **ACTIONS[kind])
    runner.catch_up()
    frames: dict[str, list[tuple[int, str]]] = {c: [] for c in CENTERS}
    for center, sub in subs.items():
        for _, seq, text in sub.console.pending:
            frames[center].append((seq, text))
    return service, runner, hub, {"snapshots": snapshots, "frames": frames}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(command, max_size=60))
def test_replaying_the_history_from_scratch_equals_the_live_views(commands: list[tuple[str, Any]]) -> None:
    service, live, _, _ = run(commands)
    replayed = EmbeddedRunner(notification_reader(service), MemoryViewStore(), CENTERS,
                              batch_size=13)
    replayed.catch_up()
    for center in CENTERS:
        assert replayed.view(center) == live.view(center)
        assert replayed.seqs.get(center, 0) == live.seqs.get(center, 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(command, max_size=60))
def test_a_snapshot_plus_the_deltas_after_it_equals_the_view(commands: list[tuple[str, Any]]) -> None:
    _, live, _, recorded = run(commands)
    for center in CENTERS:
        seq, view = recorded["snapshots"].get(center) or (0, new_view(center))
        expected_seq = seq
        for frame_seq, text in recorded["frames"][center]:
            if frame_seq <= seq:
                continue
            expected_seq += 1
            assert frame_seq == expected_seq  # consecutive, no gap
            apply_changes(view, orjson.loads(text)["changes"])
        assert view == live.view(center)
        assert expected_seq == live.seqs.get(center, 0)


def test_a_restarted_runner_resumes_exactly_after_its_committed_position() -> None:
    service = new_service()
    store = MemoryViewStore()
    first = EmbeddedRunner(notification_reader(service), store, CENTERS, checkpoint_every=3600)
    ids = []
    for grid in sorted(GRIDS) * 3:
        ids.append(str(service.report(actor=ACTOR, grid=grid, source="hotline", category="noise",
                                      severity="routine", description="d", location=None,
                                      reporter=None).id))
    first.catch_up()
    service.act(ids[0], "accept", actor=ACTOR)
    # a "crash": the second runner loads what the first committed and folds the rest
    second = EmbeddedRunner(notification_reader(service), store, CENTERS)
    assert second.position == first.position
    second.catch_up()
    fresh = EmbeddedRunner(notification_reader(service), MemoryViewStore(), CENTERS)
    fresh.catch_up()
    for center in CENTERS:
        assert second.view(center) == fresh.view(center)
    assert second.view("city")["counts"]["reported"] == len(ids) - 1
    assert second.view("city")["counts"]["accepted"] == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(command, max_size=60), st.integers(1, 20))
def test_a_rebuild_gives_the_live_views_and_a_restart_after_it_loads_them(
        commands: list[tuple[str, Any]], replay_batch: int) -> None:
    """`rebuild()` (what `linkage replay` runs) folds in batches of its own size and commits
    views instead of deltas: the views equal the live ones, and a runner started on its store
    afterwards loads those views and their open cases."""
    service, live, _, _ = run(commands)
    store = MemoryViewStore()
    rebuilt = EmbeddedRunner(notification_reader(service), store, CENTERS,
                             replay_batch_size=replay_batch)
    rebuilt.rebuild()
    restarted = EmbeddedRunner(notification_reader(service), store, CENTERS)
    assert restarted.epoch == rebuilt.epoch  # loaded, not rebuilt again for want of views
    for center in CENTERS:
        assert rebuilt.view(center) == live.view(center)
        assert restarted.view(center) == live.view(center)
        assert len(restarted.fold(center).cases) == len(live.fold(center).cases)
    assert restarted.position == live.position
