"""An incident event folded into its centers at once (`step_each`, what the runner and `linkage
replay` use), its record, queue item and feed entry built once for them, gives each center what
folding its own copy of the event alone gives."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.runner.embedded import EmbeddedRunner
from infra.store.view_store import MemoryViewStore
from projections.center_view import Center, new_center, step, step_each
from projections.envelope import Envelope
from projections.patch import apply_changes

# Three townships: two in one district, all in one city.
TOWNSHIPS = [["t1", "d1", "city"], ["t2", "d1", "city"], ["t3", "d2", "city"]]
CENTERS = ["t1", "t2", "t3", "d1", "d2", "city"]
STEPS = ["Accepted", "Dispatched", "Acknowledged", "ProgressReported", "Resolved",
         "ReturnVisited", "Closed", "Rejected", "Escalated", "Supervised", "Reopened", "Returned",
         "Transferred", "MarkedDuplicate", "VisitAttempted", "Unknown"]


def history(seed: int, townships: int, incidents: int, size: int) -> list[Envelope]:
    """Reports and later steps of a few incidents in any order (a step may come before its
    incident's report, or repeat an old version), now and then routed to another township than
    the report was (a center that never saw the report), and alerts between them."""
    rng = random.Random(seed)
    events: list[Envelope] = []
    versions: dict[str, int] = {}
    homes: dict[str, list[str]] = {}
    for n in range(1, size + 1):
        at = f"2026-11-27T{10 + n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}+00:00"
        incident = f"incident-{rng.randrange(incidents)}"
        if rng.random() < 0.1:
            events.append(Envelope(n, f"alert-{n}", 1, "CameraAlert.Raised", at, {
                "centers": rng.choice(TOWNSHIPS[:townships]), "camera": "cam-1", "grid": "g1",
                "label": "person", "start_time": 1_800_000_000 + n, "score": 0.5}))
            continue
        home = homes.setdefault(incident, rng.choice(TOWNSHIPS[:townships]))
        centers = home if rng.random() < 0.9 else rng.choice(TOWNSHIPS[:townships])
        actor = {"user": rng.choice(["u1", "u2"]), "role": "township_officer"}
        if incident not in versions or rng.random() < 0.05:
            name = "Reported"
            data: dict[str, Any] = {"grid": f"g{rng.randrange(3)}", "source": "hotline",
                                    "category": "noise",
                                    "severity": rng.choice(["routine", "major"]),
                                    "description": f"case {incident} at {n}",
                                    "step_due": rng.choice([None, at])}
        else:
            name = rng.choice(STEPS)
            data = rng.choice([
                {"note": "on it"},
                {"assignee": {"kind": "department", "id": rng.choice(["a", "b"])},
                 "due": rng.choice([None, "2026-11-27T09:00:00+08:00", at])},
                {"level": rng.choice(["district", "city"]), "step": "resolve", "next_at": at},
                {"by_center": "city", "reason": "late"},
                {"outcome": "handled", "satisfaction": rng.randrange(1, 6), "comment": ""},
                {"of": "incident-0"},
            ])
        version = versions.get(incident, 0) + 1
        if rng.random() < 0.05 and version > 2:
            version = rng.randrange(1, version)  # a redelivered old version: changes nothing
        else:
            versions[incident] = version
        events.append(Envelope(n, incident, version, f"Incident.{name}", at,
                               {"centers": centers, "actor": actor, **data}))
    return events


def one_at_a_time(events: list[Envelope], queue_size: int) -> dict[str, Center]:
    """Each center folds its own copy of each of its events, sharing nothing with the others."""
    centers = {center: new_center(center, queue_size) for center in CENTERS}
    for center in centers.values():
        center.rows = {}
    for event in events:
        for center in event.centers:
            step(centers[center], copy.deepcopy(event))
    return centers


def open_cases(center: Center) -> list[dict[str, Any]]:
    return list(center.cases)


histories = st.builds(history, seed=st.integers(0, 2**32 - 1), townships=st.integers(1, 3),
                      incidents=st.sampled_from([1, 3, 12, 40]), size=st.integers(1, 400))


@settings(max_examples=80, deadline=None)
@given(events=histories, queue_size=st.sampled_from([1, 2, 5, 200]))
def test_an_incident_event_folded_at_once_into_its_centers_equals_each_center_folded_alone(
    events: list[Envelope], queue_size: int
) -> None:
    shared = {center: new_center(center, queue_size) for center in CENTERS}
    rows: dict[str, Any] = {}
    for center in shared.values():
        center.rows = rows
    mirrors = {center: copy.deepcopy(shared[center].view) for center in CENTERS}  # consoles
    for event in events:
        folded = step_each([shared[center] for center in event.centers], event)
        for center, changes in zip(event.centers, folded, strict=True):
            apply_changes(mirrors[center], copy.deepcopy(changes))
    reference = one_at_a_time(events, queue_size)
    for center in CENTERS:
        assert shared[center].view == reference[center].view, center
        assert mirrors[center] == reference[center].view, center
        assert open_cases(shared[center]) == open_cases(reference[center]), center
    assert rows.keys() == {k for c in reference.values() for k in c.rows or {}}


@settings(max_examples=30, deadline=None)
@given(events=histories, batch=st.integers(1, 300), queue_size=st.sampled_from([2, 200]))
def test_a_rebuild_of_incidents_gives_each_center_the_view_it_folds_alone(
    events: list[Envelope], batch: int, queue_size: int
) -> None:
    def read(after: int, limit: int) -> list[Envelope]:
        return [e for e in events if e.notification_id > after][:limit]

    store = MemoryViewStore()
    runner = EmbeddedRunner(read, store, CENTERS, replay_batch_size=batch, queue_size=queue_size)
    assert runner.rebuild() == len(events)
    reference = one_at_a_time(events, queue_size)
    for center in CENTERS:
        assert runner.view(center) == reference[center].view, center
        assert open_cases(runner.fold(center)) == open_cases(reference[center]), center
