"""The urgency queue: the N most urgent open cases, refilled from the open cases beyond it."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.cases import TERMINAL, case_after, urgency
from projections.center_view import Center, apply_event, new_center, step
from projections.envelope import Envelope
from projections.patch import apply_changes
from projections.queue import OpenCases, queue_item

CENTERS = ["town", "district", "city"]
ACTOR = {"user": "u1", "role": "township_officer", "center": "town"}


class History:
    """Envelopes numbered as the store numbers them; versions per incident."""

    def __init__(self) -> None:
        self.n = 0
        self.versions: dict[str, int] = {}

    def event(self, incident: str, name: str, **data: Any) -> Envelope:
        self.n += 1
        version = self.versions[incident] = self.versions.get(incident, 0) + 1
        return Envelope(self.n, incident, version, f"Incident.{name}",
                        f"2026-11-27T10:{self.n // 60:02d}:{self.n % 60:02d}+00:00",
                        {"actor": ACTOR, "centers": CENTERS, **data})

    def report(self, incident: str, severity: str = "routine", grid: str = "g1") -> Envelope:
        return self.event(incident, "Reported", source="hotline", category="noise",
                          severity=severity, grid=grid, description=f"case {incident}")

    def dispatch(self, incident: str, due: str) -> list[Envelope]:
        return [self.event(incident, "Accepted", note=""),
                self.event(incident, "Dispatched", assignee={"kind": "department", "id": "d"},
                           due=due, note="")]


def fold(center: Center, events: list[Envelope]) -> Center:
    for event in events:
        step(center, event)
    return center


def order(center: Center) -> list[str]:
    """The queue's ids in urgency order."""
    items = center.view["queue"].values()
    return [i["id"] for i in sorted(items, key=lambda i: (i["urgency"], i["id"]))]


def test_major_cases_come_first_then_unaccepted_ones_then_the_nearest_due_time() -> None:
    h = History()
    events = [h.report("old"), h.report("new"), h.report("major", severity="major"),
              *h.dispatch("new", "2026-11-27T09:00:00+08:00")]  # due 01:00 UTC, before "old"
    center = fold(new_center("city", queue_size=10), events)
    # "old" waits to be accepted: before "new", which is being worked, whatever its due time
    assert order(center) == ["major", "old", "new"]


def test_a_more_urgent_case_pushes_the_least_urgent_one_out_of_a_full_queue() -> None:
    h = History()
    center = fold(new_center("city", queue_size=2), [h.report("a"), h.report("b"), h.report("c")])
    assert order(center) == ["a", "b"]
    assert len(center.cases) == 3  # c waits beyond the queue, not in the view
    fold(center, [h.report("d", severity="major")])
    assert order(center) == ["d", "a"]


def test_a_case_that_leaves_the_queue_lets_the_next_most_urgent_one_in() -> None:
    h = History()
    center = fold(new_center("city", queue_size=2),
                  [h.report("a"), h.report("b"), h.report("c"), h.report("d")])
    fold(center, [h.event("a", "Rejected", reason="not ours")])
    assert order(center) == ["b", "c"]
    # a case whose due time moves it down the order gives its slot to the next one too
    fold(center, h.dispatch("b", "2030-01-01T00:00:00+00:00"))
    assert order(center) == ["c", "d"]
    assert center.view["counts"]["reported"] == 2 and center.view["counts"]["dispatched"] == 1


def test_a_resolved_case_is_ordered_by_its_report_time_not_its_past_due_time() -> None:
    case = {"status": "resolved", "severity": "routine", "due": "2020-01-01T00:00:00Z",
            "reported_at": "2026-01-01T00:00:00+00:00"}
    assert urgency(case) == "132026-01-01T00:00:00.000000Z"
    assert urgency({**case, "status": "dispatched"}) == "122020-01-01T00:00:00.000000Z"


def test_an_incident_record_follows_its_events_and_ignores_ones_already_applied() -> None:
    h = History()
    report, accepted, dispatched = [h.report("a"), *h.dispatch("a", "2026-12-01T08:00:00+08:00")]
    record = case_after(case_after(case_after(None, report), accepted), dispatched)
    assert record is not None
    assert (record["status"], record["assignee"], record["due"], record["version"]) == (
        "dispatched", "department:d", "2026-12-01T08:00:00+08:00", 3)
    assert record["centers"] == CENTERS and record["reported_at"] == report.at
    assert record["urgency"] == "122026-12-01T00:00:00.000000Z"
    assert case_after(record, accepted) is record  # a redelivery changes nothing
    closed = case_after(record, h.event("a", "Rejected", reason="no"))
    assert closed is not None and closed["status"] == "rejected"
    assert case_after(None, accepted) is None  # not reported here: no record


def test_the_read_model_rows_of_a_batch_are_every_record_the_fold_produced() -> None:
    h = History()
    center = new_center("city", queue_size=1)
    center.rows = {}
    fold(center, [h.report("a"), h.report("b"), h.event("a", "Rejected", reason="no")])
    assert {i: r["status"] for i, r in center.rows.items()} == {"a": "rejected", "b": "reported"}


# -- property: any history, folded one event at a time, equals a replay and any interleaving


@st.composite
def histories(draw: Any) -> list[Envelope]:
    """Incident histories that follow the loop, with majors, due times and closures."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    h = History()
    status: dict[str, str] = {}
    events: list[Envelope] = []
    for _ in range(draw(st.integers(1, 120))):
        live = [i for i, s in status.items() if s not in TERMINAL]
        if not live or rng.random() < 0.35:
            incident = f"i{len(status)}"
            events.append(h.report(incident, rng.choice(["routine", "routine", "major"]),
                                   grid=rng.choice(["g1", "g2"])))
            status[incident] = "reported"
            continue
        incident = rng.choice(live)
        now = status[incident]
        due = f"2026-11-{rng.randint(20, 30)}T{rng.randint(0, 23):02d}:00:00+0{rng.randint(0, 8)}:00"
        if now in ("reported", "returned", "reopened") and rng.random() < 0.7:
            if now == "reported":
                events.append(h.event(incident, "Accepted", note=""))
            events.append(h.event(incident, "Dispatched", due=due, note="",
                                  assignee={"kind": "department", "id": "d"}))
            status[incident] = "dispatched"
        elif now == "dispatched" and rng.random() < 0.5:
            events.append(h.event(incident, "Returned", reason="not ours"))
            status[incident] = "returned"
        elif rng.random() < 0.3:
            events.append(h.event(incident, "Escalated", level="township", center="town",
                                  reason="overdue"))
        else:
            name, final = rng.choice([("Closed", "closed"), ("Rejected", "rejected"),
                                      ("Resolved", "resolved"), ("Reopened", "reopened")])
            events.append(h.event(incident, name, reason="r", outcome="o"))
            status[incident] = final
    return events


def interleaved(events: list[Envelope], seed: int) -> list[Envelope]:
    """The events in another order that keeps each incident's own order (as partitions do)."""
    rng = random.Random(seed)
    queues: dict[str, list[Envelope]] = {}
    for event in events:
        queues.setdefault(event.originator_id, []).append(event)
    out: list[Envelope] = []
    while queues:
        incident = rng.choice(sorted(queues))
        out.append(queues[incident].pop(0))
        if not queues[incident]:
            del queues[incident]
    return out


@settings(max_examples=150, deadline=None)
@given(histories(), st.integers(1, 6), st.integers(0, 1000))
def test_folding_any_history_event_by_event_equals_a_replay_and_any_interleaving(
    events: list[Envelope], size: int, seed: int
) -> None:
    live = new_center("city", queue_size=size)
    console = new_center("city", queue_size=size).view  # applies only the deltas
    for event in events:
        apply_changes(console, step(live, event))
        assert len(live.view["queue"]) <= size
    assert console == live.view
    replayed = fold(new_center("city", queue_size=size), list(events))
    assert replayed.view == live.view
    # the queue is the first `size` open cases in urgency order, whatever the history
    records: dict[str, Any] = {}
    for event in events:
        records[event.originator_id] = case_after(records.get(event.originator_id), event)
    still_open = sorted((r for r in records.values() if r["status"] not in TERMINAL),
                        key=lambda r: (r["urgency"], r["id"]))
    assert live.view["queue"] == {r["id"]: queue_item(r) for r in still_open[:size]}
    assert [c["id"] for c in live.cases] == [r["id"] for r in still_open]
    # another interleaving of incidents (events from several partitions, as the worker folds
    # them, deduplicating by its own marks) ends with the same view
    other = new_center("city", queue_size=size)
    for event in interleaved(events, seed):
        apply_event(other, event)
    assert other.view == live.view


def test_open_cases_keep_urgency_order_through_updates() -> None:
    cases = OpenCases()
    for i, when in enumerate(["2026-01-03", "2026-01-01", "2026-01-02"]):
        cases.put({"id": f"c{i}", "urgency": f"1{when}"})
    assert [c["id"] for c in cases] == ["c1", "c2", "c0"]
    cases.put({"id": "c0", "urgency": "0major"})
    assert [c["id"] for c in cases.top(2)] == ["c0", "c1"] and cases.rank("c2") == 2
    assert cases.remove("c1") is not None and cases.at(1)["id"] == "c2"


def test_a_runner_restarted_with_another_queue_size_rebuilds_its_views() -> None:
    from domain.application import IncidentService
    from infra.bootstrap import notification_reader
    from infra.runner.embedded import EmbeddedRunner
    from infra.store.view_store import MemoryViewStore

    service = IncidentService(lambda grid: CENTERS, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    actor = {"user": "u", "role": "admin", "center": None}
    for _ in range(5):
        service.report(actor=actor, grid="g", source="hotline", category="noise",
                       severity="routine", description="d", location=None, reporter=None)
    store = MemoryViewStore()
    first = EmbeddedRunner(notification_reader(service), store, CENTERS, queue_size=2,
                           checkpoint_every=0)
    first.catch_up()
    assert len(first.view("city")["queue"]) == 2
    again = EmbeddedRunner(notification_reader(service), store, CENTERS, queue_size=2)
    assert again.epoch == first.epoch  # same size: resumes where it was
    bigger = EmbeddedRunner(notification_reader(service), store, CENTERS, queue_size=4)
    assert bigger.epoch != first.epoch  # rebuilt: consoles take a fresh snapshot
    fresh = EmbeddedRunner(notification_reader(service), MemoryViewStore(), CENTERS, queue_size=4)
    fresh.catch_up()
    assert bigger.view("city") == fresh.view("city") and len(fresh.view("city")["queue"]) == 4


def test_the_order_is_major_then_overdue_then_unaccepted_by_age_then_nearest_due() -> None:
    base = {"severity": "routine", "reported_at": "2026-01-01T00:00:00Z", "escalations": 0}
    cases = {
        "major-new": {**base, "severity": "major", "status": "reported",
                      "reported_at": "2026-06-01T00:00:00Z"},
        "overdue": {**base, "status": "dispatched", "due": "2026-03-01T00:00:00Z", "escalations": 1},
        "waiting-long": {**base, "status": "reported", "reported_at": "2026-01-01T00:00:00Z"},
        "waiting-short": {**base, "status": "reported", "reported_at": "2026-02-01T00:00:00Z"},
        "due-soon": {**base, "status": "dispatched", "due": "2026-01-02T00:00:00Z"},
        "due-later": {**base, "status": "acknowledged", "due": "2026-05-01T00:00:00Z"},
        "no-due": {**base, "status": "accepted", "reported_at": "2025-01-01T00:00:00Z"},
        "awaiting-visit": {**base, "status": "resolved", "due": "2020-01-01T00:00:00Z"},
    }
    ranked = sorted(cases, key=lambda i: (urgency(cases[i]), i))
    assert ranked == ["major-new", "overdue", "waiting-long", "waiting-short", "due-soon",
                      "due-later", "no-due", "awaiting-visit"]


def test_a_major_case_reported_last_is_first_among_a_hundred_routine_ones() -> None:
    h = History()
    center = new_center("city", queue_size=50)
    for i in range(100):
        fold(center, [h.report(f"r{i:03d}"),
                      *h.dispatch(f"r{i:03d}", f"2026-12-{1 + i % 28:02d}T08:00:00+08:00")])
    fold(center, [h.report("major", severity="major")])
    assert order(center)[0] == "major"
