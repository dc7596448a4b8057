"""A run of alerts folded once for several centers (`step_runs`, what the runner and `linkage
replay` use) gives each center what folding its own events one at a time gives; so does
`fold_events` (the runner's and the time-travel follower's fold of a batch), in any chunks."""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.runner.embedded import EmbeddedRunner
from infra.store.view_store import MemoryViewStore
from projections.center_view import Center, apply, fold_events, new_center, step_runs
from projections.envelope import Envelope
from projections.patch import apply_changes

# Three townships: two in one district, all in one city. A camera belongs to one township.
TOWNSHIPS = [["t1", "d1", "city"], ["t2", "d1", "city"], ["t3", "d2", "city"]]
CENTERS = ["t1", "t2", "t3", "d1", "d2", "city"]
HANDLED_NAMES = ["Updated", "Ended", "RuleFired", "Acknowledged", "Dismissed", "LinkedToIncident",
                 "IncidentCreated"]


def history(seed: int, townships: int, cameras: int, size: int, spread: int) -> list[Envelope]:
    """Bursts of raised alerts (more storms and alerts than a view keeps, some late), officers'
    actions and rule firings on earlier alerts, and now and then an event of another aggregate,
    which ends the pending runs of its centers."""
    rng = random.Random(seed)
    events: list[Envelope] = []
    raised: list[tuple[str, list[str]]] = []
    for n in range(1, size + 1):
        roll = rng.random()
        if roll < 0.03:
            centers = rng.choice(TOWNSHIPS[:townships])
            events.append(Envelope(n, f"other-{n}", 1, "Other.Happened", "2027-01-01",
                                   {"centers": centers}))
        elif roll < 0.82 or not raised:
            camera = rng.randrange(cameras)
            centers = TOWNSHIPS[camera % townships]
            at = (1_800_000_000 + n * spread / size if rng.random() < 0.9
                  else 1_800_000_000 + rng.random() * spread)
            events.append(Envelope(n, f"alert-{n}", 1, "CameraAlert.Raised", "2027-01-01", {
                "centers": centers, "camera": f"cam-{camera}", "grid": f"g{camera % 5}",
                "label": rng.choice(["person", "car"]), "start_time": at, "score": 0.5,
                "kind": "camera", "zones": ["gate"]}))
            raised.append((f"alert-{n}", centers))
        else:
            target, centers = rng.choice(raised)
            name = rng.choice(HANDLED_NAMES)
            data: dict[str, Any] = {
                "centers": centers, "was": rng.choice(["new", "new", "acknowledged"]),
                "changes": rng.choice([{}, {"score": 0.9}, {"zones": ["yard"]}]),
                "rule": "watch", "priority": rng.choice([None, "urgent"]),
                "alert": {"camera": "cam-0", "label": "person"}}
            if name == "RuleFired" and rng.random() < 0.5:
                data["incident"] = "incident-1"
            events.append(Envelope(n, target, 2, f"CameraAlert.{name}", "2027-01-01", data))
    return events


def one_at_a_time(events: list[Envelope]) -> dict[str, Center]:
    """The straightforward fold: each center folds its own copy of each of its events, one by
    one, sharing nothing with the other centers."""
    centers = {center: new_center(center) for center in CENTERS}
    for event in events:
        for center in event.centers:
            apply(centers[center], copy.deepcopy(event))
    return centers


histories = st.builds(history, seed=st.integers(0, 2**32 - 1), townships=st.integers(1, 3),
                      cameras=st.sampled_from([1, 2, 7, 60, 200]), size=st.integers(1, 1500),
                      spread=st.sampled_from([30, 600, 6000]))


@settings(max_examples=60, deadline=None)
@given(events=histories, lengths=st.lists(st.integers(1, 400), min_size=1, max_size=5))
def test_runs_folded_once_for_several_centers_equal_each_center_folded_alone(
    events: list[Envelope], lengths: list[int]
) -> None:
    shared = {center: new_center(center) for center in CENTERS}
    mirrors = {center: copy.deepcopy(shared[center].view) for center in CENTERS}  # consoles
    start = 0
    while start < len(events):
        for length in lengths:
            runs: dict[str, list[Envelope]] = {}
            for event in events[start:start + length]:
                if event.aggregate == "CameraAlert":
                    for center in event.centers:
                        runs.setdefault(center, []).append(event)
            folded = step_runs([(shared[center], run) for center, run in runs.items()])
            for center, changes in zip(runs, folded, strict=True):
                apply_changes(mirrors[center], copy.deepcopy(changes))
            start += length
    reference = one_at_a_time(events)
    for center in CENTERS:
        assert shared[center].view == reference[center].view, center
        assert mirrors[center] == reference[center].view, center


@settings(max_examples=40, deadline=None)
@given(events=histories, batch=st.integers(1, 700), read_size=st.integers(1, 700))
def test_a_rebuild_gives_each_center_the_view_it_folds_alone(
    events: list[Envelope], batch: int, read_size: int
) -> None:
    def read(after: int, limit: int) -> list[Envelope]:
        return [e for e in events if e.notification_id > after][:limit]

    runner = EmbeddedRunner(read, MemoryViewStore(), CENTERS, replay_batch_size=batch,
                            read_size=read_size)
    assert runner.rebuild() == len(events)
    reference = one_at_a_time(events)
    for center in CENTERS:
        assert runner.view(center) == reference[center].view, center


@settings(max_examples=40, deadline=None)
@given(events=histories, chunk=st.integers(1, 700),
       folded=st.sets(st.sampled_from(CENTERS), min_size=1))
def test_fold_events_in_any_chunks_gives_each_center_what_it_folds_alone(
    events: list[Envelope], chunk: int, folded: set[str]
) -> None:
    centers = {center: new_center(center) for center in folded}  # only some centers folded here
    mirrors = {center: copy.deepcopy(centers[center].view) for center in folded}  # consoles
    emitted: list[str] = []

    def emit(center: str, changes: list[Any]) -> None:
        emitted.append(center)
        apply_changes(mirrors[center], copy.deepcopy(changes))

    for start in range(0, len(events), chunk):
        fold_events(events[start:start + chunk], centers.get, emit)
    reference = one_at_a_time(events)
    for center in folded:
        assert centers[center].view == reference[center].view, center
        assert mirrors[center] == reference[center].view, center
    assert set(emitted) <= folded


@settings(max_examples=40, deadline=None)
@given(events=histories, batch=st.integers(1, 700), read_size=st.integers(1, 700))
def test_a_batch_read_in_pieces_folds_and_commits_as_the_batch_read_at_once(
    events: list[Envelope], batch: int, read_size: int
) -> None:
    """Reading a replay batch `read_size` events at a time changes nothing a rebuild gives:
    the same batches (`batch` events each, each committed), so the same seqs, and the same
    views to the byte (key order included)."""
    def read(after: int, limit: int) -> list[Envelope]:
        return [e for e in events if e.notification_id > after][:limit]

    class Commits(MemoryViewStore):
        def __init__(self) -> None:
            super().__init__()
            self.positions: list[int] = []

        def commit(self, position: int, *args: Any, **kwargs: Any) -> None:
            self.positions.append(position)
            super().commit(position, *args, **kwargs)

    at_once = EmbeddedRunner(read, MemoryViewStore(), CENTERS, replay_batch_size=batch,
                             read_size=batch)
    store = Commits()
    in_pieces = EmbeddedRunner(read, store, CENTERS, replay_batch_size=batch,
                               read_size=read_size)
    store.positions.clear()
    assert in_pieces.rebuild() == at_once.rebuild() == len(events)
    ends = [e.notification_id for e in events[batch - 1::batch]]
    if len(events) % batch:
        ends.append(events[-1].notification_id)
    assert store.positions == ends
    assert in_pieces.seqs == at_once.seqs
    assert in_pieces.position == at_once.position
    for center in CENTERS:
        assert orjson.dumps(in_pieces.view(center)) == orjson.dumps(at_once.view(center)), center
