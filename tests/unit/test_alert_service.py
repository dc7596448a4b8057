"""AlertService and the ingest decision at their ports, with a hand-written in-memory store."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest

from domain.alert_decision import AlertDecider
from domain.alert_rules import parse_rules
from domain.alert_service import AlertService, UnknownArea, UnknownCamera
from domain.alert_store import IngestUnavailable, Located, NewAlert, Outcome
from domain.application import IncidentService
from domain.camera_alert import CameraAlert, Observation, alert_id
from domain.incident import Actor, InvalidCommand

FEED: Actor = {"user": "frigate", "role": "feed", "center": None}
OFFICER: Actor = {"user": "duty", "role": "city_officer", "center": None}
CAMERAS = {"cam-1": "grid-1", "cam-2": "grid-2"}
CENTERS = {"grid-1": ("town-1", "district", "city"), "grid-2": ("town-2", "district", "city")}
RULES = parse_rules({"rules": [{"name": "watch_plate", "plates": ["冀G 12345"],
                                "action": "raise_priority", "priority": "critical"}]})


def obs(event_id: str, phase: str = "new", **fields: Any) -> Observation:
    values: dict[str, Any] = {"camera": "cam-1", "label": "person", "score": 0.6,
                              "start_time": 1_800_000_000.0}
    values.update(fields)
    return Observation(feed_event_id=event_id, phase=phase, **values)


class FakeAlertStore:
    """AlertStore and StoredAlerts in memory: decides with the domain, keeps the events."""

    def __init__(self, decider: AlertDecider | None = None) -> None:
        self.decider = decider or AlertDecider(RULES)
        self.batches: list[tuple[str, list[Observation], Located, Actor]] = []
        self.events: list[Any] = []  # committed, in order
        self.unavailable: IngestUnavailable | None = None
        self.held = 0  # how often exclusive() was entered

    def ingest(self, feed: str, observations: Sequence[Observation], located: Located,
               actor: Actor) -> list[Outcome]:
        if self.unavailable is not None:
            raise self.unavailable
        self.batches.append((feed, list(observations), located, actor))
        events, outcomes = self.decider.decide(feed, observations, located, actor, self)
        self.events.extend(CameraAlert.raised_event_of(e.alert_id, e.fields, e.timestamp)
                           if isinstance(e, NewAlert) else e for e in events)
        return outcomes

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        self.held += 1
        yield

    def existing(self, ids: Collection[UUID]) -> set[UUID]:
        return {e.originator_id for e in self.events} & set(ids)

    def load(self, alert_id: UUID) -> CameraAlert:
        alert = None
        for event in self.events:
            if event.originator_id == alert_id:
                alert = event.mutate(alert)
        assert isinstance(alert, CameraAlert)
        return alert

    def raised_from(self, position: int, limit: int) -> list[tuple[int, Any]]:
        raised = [(n, e) for n, e in enumerate(self.events, 1)
                  if isinstance(e, CameraAlert.Raised)]  # type: ignore[attr-defined]
        return [(n, e) for n, e in raised if n >= position][:limit]


@pytest.fixture
def store() -> FakeAlertStore:
    return FakeAlertStore()


@pytest.fixture
def service(store: FakeAlertStore) -> AlertService:
    incidents = IncidentService(lambda grid: CENTERS[grid])
    return AlertService(incidents, store, store, CAMERAS.__getitem__, CENTERS.__getitem__)


def test_a_batch_reaches_the_store_located_once_per_place(
        service: AlertService, store: FakeAlertStore) -> None:
    batch = [obs("a"), obs("b", camera="cam-2"), obs("c", camera=None, grid="grid-1"), obs("d")]
    outcomes = service.ingest("frigate", batch, FEED)
    assert [o.status for o in outcomes] == ["created"] * 4
    [(feed, observations, located, actor)] = store.batches
    assert (feed, observations, actor) == ("frigate", batch, FEED)
    assert located == [("grid-1", list(CENTERS["grid-1"])), ("grid-2", list(CENTERS["grid-2"])),
                       ("grid-1", list(CENTERS["grid-1"])), ("grid-1", list(CENTERS["grid-1"]))]
    assert located[0] is located[3]  # one camera, one lookup: the pair is shared


def test_an_unknown_camera_refuses_the_batch_before_the_store_sees_it(
        service: AlertService, store: FakeAlertStore) -> None:
    with pytest.raises(UnknownCamera, match="alert #1: camera 'cam-404' is not in the camera "
                                            "registry; expected the id of a registered camera"):
        service.ingest("frigate", [obs("a"), obs("b", camera="cam-404")], FEED)
    assert store.batches == []


@pytest.mark.parametrize(("fields", "message"), [
    ({"camera": None}, "alert #0: an alert needs a camera or a grid; got neither"),
    ({"camera": None, "grid": "grid-9"}, "alert #0: grid 'grid-9' is not in the jurisdiction tree"),
])
def test_an_alert_without_a_known_place_refuses_the_batch(
        service: AlertService, store: FakeAlertStore, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(UnknownArea, match=message):
        service.ingest("frigate", [obs("a", **fields)], FEED)
    assert store.batches == []


def test_unknown_places_are_invalid_commands() -> None:
    """So the one domain-error handler answers them 422, like any invalid field."""
    assert issubclass(UnknownCamera, InvalidCommand) and issubclass(UnknownArea, InvalidCommand)


def test_each_jurisdiction_is_authorized_once_before_anything_is_stored(
        service: AlertService, store: FakeAlertStore) -> None:
    asked: list[tuple[str, ...]] = []
    batch = [obs("a"), obs("b"), obs("c", camera="cam-2")]
    service.ingest("frigate", batch, FEED, authorize=lambda centers: asked.append(tuple(centers)))
    assert sorted(asked) == sorted([CENTERS["grid-1"], CENTERS["grid-2"]])

    def refuse_town_2(centers: Sequence[str]) -> None:
        if "town-2" in centers:
            raise PermissionError("not town-2")

    with pytest.raises(PermissionError):
        service.ingest("frigate", [obs("d"), obs("e", camera="cam-2")], FEED,
                       authorize=refuse_town_2)
    assert len(store.batches) == 1  # only the first batch


def test_a_store_that_cannot_take_the_batch_says_when_to_send_it_again(
        service: AlertService, store: FakeAlertStore) -> None:
    store.unavailable = IngestUnavailable("restarting", retry_after=4.0)
    with pytest.raises(IngestUnavailable) as refused:
        service.ingest("frigate", [obs("a")], FEED)
    assert refused.value.retry_after == 4.0


def test_new_alerts_no_rule_touches_are_decided_without_building_them(
        store: FakeAlertStore) -> None:
    located: Located = [("grid-1", list(CENTERS["grid-1"]))] * 2
    events, outcomes = store.decider.decide(
        "frigate", [obs("a"), obs("b", label="car", plate="冀G12345")], located, FEED, store)
    assert isinstance(events[0], NewAlert)
    assert events[0].alert_id == alert_id("frigate", "a") and events[0].alert_text == outcomes[0].alert
    assert events[0].fields == CameraAlert.raised_fields(obs("a"), feed="frigate", grid="grid-1",
                                                         centers=list(CENTERS["grid-1"]), actor=FEED)
    assert [type(e).__name__ for e in events[1:]] == ["Raised", "RuleFired"]  # a rule fired on b
    assert outcomes[1].rules == ["watch_plate"]


def test_a_redelivery_reads_the_stored_alert_and_changes_nothing(
        service: AlertService, store: FakeAlertStore) -> None:
    service.ingest("frigate", [obs("a"), obs("a", "update", score=0.9)], FEED)
    stored = len(store.events)
    again = service.ingest("frigate", [obs("a"), obs("a", "update", score=0.9)], FEED)
    assert [o.status for o in again] == ["duplicate", "duplicate"]
    assert len(store.events) == stored
    ended = service.ingest("frigate", [obs("a", "end", end_time=1_800_000_030.0)], FEED)
    assert [o.status for o in ended] == ["ended"]
    assert store.load(alert_id("frigate", "a")).version == 3


def test_officers_commands_hold_the_store_exclusively(
        service: AlertService, store: FakeAlertStore) -> None:
    alert = CameraAlert.raise_(obs("a"), feed="frigate", grid="grid-1",
                               centers=list(CENTERS["grid-1"]), actor=FEED)
    service.incidents.save(alert)
    service.act(str(alert.id), "acknowledge", actor=OFFICER)
    assert store.held == 1


def test_a_storm_is_found_through_the_stored_raised_events(
        service: AlertService, store: FakeAlertStore) -> None:
    service.ingest("frigate", [obs(f"s{i}", start_time=1_800_000_000.0 + i) for i in range(3)]
                   + [obs("x", camera="cam-2")], FEED)
    count = service.acknowledge_storm(kind="camera", ident="cam-1", size=60,
                                      start=1_800_000_000, from_notification=1, actor=OFFICER)
    assert count == 3 and store.held == 1


def test_an_update_is_authorized_where_the_alert_is_stored() -> None:
    """Two keys sharing a feed name share its alert ids: B's alert, changed through A's
    camera, must be asked of B's centers."""
    places = {"grid-a": ["town-a", "city"], "grid-b": ["town-b", "city"]}
    memory = FakeAlertStore()
    alerts = AlertService(IncidentService(lambda grid: places[grid]), memory, memory,
                          {"cam-a": "grid-a"}.__getitem__, places.__getitem__)
    actor: Actor = {"user": "feed:shared", "role": "feed", "center": None}
    asked: list[list[str]] = []

    def only_town_a(centers: Sequence[str]) -> None:
        asked.append(list(centers))
        if "town-b" in centers:
            raise PermissionError("town-b")

    alerts.ingest("feed:shared", [Observation("s-x", 1_800_000_000.0, grid="grid-b")], actor)
    forged = Observation("s-x", 1_800_000_000.0, phase="end", camera="cam-a", plate="FORGED")
    with pytest.raises(PermissionError):
        alerts.ingest("feed:shared", [forged], actor, authorize=only_town_a)
    assert asked == [["town-a", "city"], ["town-b", "city"]]
    asked.clear()
    again = Observation("s-x", 1_800_000_000.0, phase="new", camera="cam-a")
    assert alerts.ingest("feed:shared", [again], actor, authorize=only_town_a)[0].status == "duplicate"
    assert asked == [["town-a", "city"]]  # a repeated "new" changes nothing: not asked of B
