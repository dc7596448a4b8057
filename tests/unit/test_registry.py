"""The registry's domain and pure folds: ID numbers, residents, workers, population counts,
roster and workload."""

from __future__ import annotations

from typing import Any

import pytest

from domain.incident import Actor
from domain.registry import (
    AlreadyRegistered,
    Inactive,
    InvalidField,
    Resident,
    Worker,
    check_id_number,
    id_check_digit,
)
from projections.center_view import apply, new_center
from projections.envelope import Envelope
from projections.population import kept_units, population_of
from projections.registry import Registry
from projections.registry import apply as fold

ACTOR: Actor = {"user": "u", "role": "admin", "center": None}
UNITS = ["g1", "c1", "t1", "d1", "city"]
OTHER = ["g9", "c9", "t9", "d1", "city"]


def test_the_check_digit_follows_gb_11643() -> None:
    assert id_check_digit("11010519491231002") == "X"  # the standard's own example
    assert check_id_number("11010519491231002x") == "11010519491231002X"
    with pytest.raises(InvalidField, match="check digit") as caught:
        check_id_number("110105194912310021")
    assert caught.value.field == "id_number" and "110105194912310021" not in str(caught.value)
    for bad in ("1101051949123100", "11010519491331002X", "01010519491231002X", 12, None):
        with pytest.raises(InvalidField):
            check_id_number(bad)


def resident(**overrides: Any) -> Resident:
    fields: dict[str, Any] = {
        "id_number": "11010519491231002X", "name": "张三", "phone": "13800000000",
        "household": "1号", "kind": "rental", "grid": "g1", "units": UNITS,
        "centers": ["t1", "d1", "city"], "arrived": "2026-11-30", "actor": ACTOR}
    fields.update(overrides)
    return Resident(**fields)


def test_a_resident_moves_departs_and_may_return_but_not_twice() -> None:
    person = resident()
    with pytest.raises(AlreadyRegistered, match="use move") as caught:
        person.register_again(name="x", phone="1", household="h", kind="rental", grid="g9",
                              units=OTHER, centers=["t9", "d1", "city"], arrived="2026-12-01",
                              actor=ACTOR)
    assert caught.value.where == "g1"
    with pytest.raises(InvalidField):
        person.move(grid="g1", units=UNITS, centers=[], household="h", on="2026-12-01",
                    actor=ACTOR)
    person.move(grid="g9", units=OTHER, centers=["t9", "d1", "city"], household="h",
                on="2026-12-01", actor=ACTOR)
    assert person.grid == "g9"
    person.deregister(reason="left", on="2026-12-02", actor=ACTOR)
    with pytest.raises(Inactive):
        person.deregister(reason="again", on="2026-12-02", actor=ACTOR)
    with pytest.raises(Inactive):
        person.correct(actor=ACTOR, name="李四")
    person.register_again(name="张三", phone="1", household="h", kind="permanent", grid="g1",
                          units=UNITS, centers=["t1", "d1", "city"], arrived="2026-12-03",
                          actor=ACTOR)
    assert person.registered and person.kind == "permanent"


def test_a_worker_is_assigned_trained_and_released() -> None:
    worker = Worker.appoint(worker_id="w1", name={"zh": "王", "en": "Wang"},
                            employment="part_time", actor=ACTOR)
    assert worker.assign(grid="g1", lead=True, actor=ACTOR)
    assert not worker.assign(grid="g1", lead=True, actor=ACTOR)  # nothing new
    assert worker.complete_training(course="basics", on="2026-11-01", actor=ACTOR)
    assert not worker.complete_training(course="basics", on="2026-11-01", actor=ACTOR)
    with pytest.raises(InvalidField) as caught:
        worker.complete_training(course="x", on="2026-13-01", actor=ACTOR)
    assert caught.value.field == "date"
    worker.release(reason="resigned", actor=ACTOR)
    assert worker.grids == [] and worker.released
    with pytest.raises(Inactive):
        worker.assign(grid="g2", lead=False, actor=ACTOR)
    with pytest.raises(InvalidField):
        Worker.appoint(worker_id="w2", name={"zh": "a", "en": "b"}, employment="sometimes",
                       actor=ACTOR)


def envelope(n: int, kind: str, data: dict[str, Any], *, at: str = "2026-11-30T10:00:00+00:00",
             aggregate: str = "r1") -> Envelope:
    return Envelope(n, aggregate, n, kind, at, data)


def registered(n: int, units: list[str], kind: str = "floating", **extra: Any) -> Envelope:
    return envelope(n, "Resident.Registered", {"units": units, "kind": kind,
                                               "centers": [u for u in units[2:]], **extra})


def test_a_township_counts_its_grids_and_communities_and_a_district_its_townships() -> None:
    assert kept_units(UNITS, "t1") == ["g1", "c1", "t1"]
    assert kept_units(UNITS, "d1") == ["t1", "d1"]
    assert kept_units(UNITS, "city") == ["d1", "city"]
    assert kept_units(UNITS, "t9") == []


def test_arrivals_moves_departures_and_corrections_count_at_every_level() -> None:
    township, district = new_center("t1"), new_center("d1")
    events = [
        registered(1, UNITS, "floating"),
        registered(2, UNITS, "rental"),
        envelope(3, "Resident.Moved", {"from_units": UNITS, "units": OTHER, "kind": "rental",
                                       "centers": ["t1", "t9", "d1", "city"]}),
        envelope(4, "Resident.Corrected", {"old_kind": "floating", "kind": "permanent",
                                           "units": UNITS, "centers": ["t1", "d1", "city"]}),
    ]
    for event in events:
        for center in (township, district):
            if center.view["center"] in event.centers:
                apply(center, event)
    assert population_of(township.view, "g1") | {"week": ""} == {
        "week": "", "total": 1, "permanent": 1, "floating": 0, "rental": 0, "arrivals": 2,
        "departures": 1}
    assert population_of(township.view, "t1")["total"] == 1
    assert population_of(district.view, "d1")["total"] == 2  # a move inside the district
    assert population_of(district.view, "t9")["rental"] == 1
    assert population_of(district.view, "t1")["departures"] == 1
    # A new week starts the weekly figures again; the totals stay.
    apply(township, envelope(5, "Resident.Deregistered",
                             {"units": UNITS, "kind": "permanent", "centers": ["t1"]},
                             at="2026-12-08T09:00:00+00:00"))
    figures = population_of(township.view, "g1")
    assert figures["week"] == "2026-W50" and figures["arrivals"] == 0
    assert figures["departures"] == 1 and figures["total"] == 0
    assert "population" in township.view and "recent" in township.view
    assert township.view["recent"] == []  # no resident ever enters the event feed


def test_the_roster_keeps_one_lead_per_grid_and_the_workload_its_acknowledge_times() -> None:
    registry = Registry()
    name = {"zh": "a", "en": "a"}
    events = [
        envelope(1, "Worker.Appointed", {"worker_id": "w1", "name": name,
                                         "employment": "full_time"}, aggregate="A"),
        envelope(2, "Worker.Appointed", {"worker_id": "w2", "name": name,
                                         "employment": "part_time"}, aggregate="B"),
        envelope(3, "Worker.Assigned", {"grid": "g1", "lead": True}, aggregate="A"),
        envelope(4, "Worker.Assigned", {"grid": "g1", "lead": True}, aggregate="B"),
        envelope(5, "Incident.Dispatched", {"assignee": {"kind": "grid_worker", "id": "w2"},
                                            "due": "2026-11-30T11:00:00+00:00"},
                 at="2026-11-30T10:00:00+00:00", aggregate="i1"),
        envelope(6, "Incident.Acknowledged", {}, at="2026-11-30T10:02:00+00:00",
                 aggregate="i1"),
        envelope(7, "Incident.Dispatched", {"assignee": {"kind": "grid_worker", "id": "w2"},
                                            "due": "2026-12-30T11:00:00+00:00"},
                 aggregate="i2"),
        envelope(8, "Incident.Resolved", {}, aggregate="i2"),
    ]
    for event in events:
        fold(registry, event)
    fold(registry, events[3])  # a redelivered event changes nothing
    assert registry.leads == {"g1": "w2"}
    assert registry.workers["w1"]["lead_of"] == [] and registry.workers["w1"]["grids"] == ["g1"]
    from datetime import UTC, datetime

    load = registry.workload["grid_worker:w2"].summary(datetime(2026, 11, 30, 12, tzinfo=UTC))
    assert load == {"open": 1, "overdue": 1, "mean_ack_seconds": 120.0, "acknowledged": 1}
    fold(registry, envelope(9, "Worker.Released", {"reason": "x"}, aggregate="B"))
    assert registry.leads == {} and registry.staffed("g1")  # w1 still serves it
    assert not registry.worker_serves("w2", "g1")
