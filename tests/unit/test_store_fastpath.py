"""The storage fast paths give exactly what the slow, generic paths give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid5

import orjson
import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alert_decision import AlertDecider
from domain.alert_rules import Rule, RuleSet
from domain.alert_store import NewAlert
from domain.application import IncidentService
from domain.camera_alert import ALERT_NAMESPACE, CameraAlert, Observation, alert_id
from domain.codec import OrjsonTranscoder
from domain.incident import Actor
from infra.ingest.raised_event import KnownStateStoredEvent, raised_stored_event
from infra.ingest.stored_alerts import RecorderAlerts
from projections.envelope import from_state, from_stored

LABELS = ("person", "car", "fire", "smoke", "flood")
KINDS = ("camera", "sensor", "cap")


def _may_match_by_scan(rules: RuleSet, label: str, kind: str) -> bool:
    return any((not r.labels or label in r.labels) and (not r.kinds or kind in r.kinds)
               for r in rules.rules)


_rule = st.builds(
    Rule,
    name=st.text(min_size=1, max_size=5),
    action=st.just("raise_priority"),
    labels=st.frozensets(st.sampled_from(LABELS), max_size=3),
    kinds=st.frozensets(st.sampled_from(KINDS), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_rule, max_size=5), st.sampled_from((*LABELS, "other")), st.sampled_from(KINDS))
def test_may_match_is_the_scan_over_rules(rules: list[Rule], label: str, kind: str) -> None:
    ruleset = RuleSet(tuple(rules))
    assert ruleset.may_match(label, kind) == _may_match_by_scan(ruleset, label, kind)


def test_rulesets_compare_by_their_rules() -> None:
    rule = Rule(name="a", action="raise_priority", labels=frozenset({"fire"}))
    assert RuleSet((rule,)) == RuleSet((rule,))
    assert not RuleSet().may_match("fire", "camera")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=200))
def test_alert_id_is_uuid5_of_feed_and_event_id(feed: str, event_id: str) -> None:
    expected = uuid5(ALERT_NAMESPACE, f"{feed}:{event_id}")
    got = alert_id.__wrapped__(feed, event_id)
    assert got == expected and got.version == 5 and str(got) == str(expected)
    assert hash(got) == hash(expected)


def test_alert_id_known_value() -> None:
    # Fixed forever: stored alerts are found again by this id.
    assert alert_id("frigate", "1718000000.123-abc") == uuid5(
        UUID("6c1f3a52-5d0e-4f53-9a63-3f1bd0c2a7e1"), "frigate:1718000000.123-abc")


FEED: Actor = {"user": "frigate", "role": "feed", "center": None}
START = 1_800_000_000.125
OBSERVATIONS = [
    Observation(feed_event_id="plain", start_time=START),
    Observation(feed_event_id="cam", start_time=START, camera="cam-1", label="person", score=0.7,
                zones=("gate", "yard"), seen_time=START + 4.5),
    Observation(feed_event_id="top", start_time=START, camera="cam-1", label="car", score=0.4,
                top_score=0.9, plate="冀G 12345", false_positive=True, description="车牌 \"x\"\n"),
    Observation(feed_event_id="ended", phase="end", start_time=START, camera="cam-2",
                end_time=START + 60, seen_time=START + 59),
    Observation(feed_event_id="update-end", phase="update", start_time=1_700_000_000,
                end_time=START + 60, kind="sensor", grid="grid-9", score=0.0, top_score=1.0),
    Observation(feed_event_id="sender/cap-1", start_time=START, kind="cap", grid="grid-9",
                label="Flood", score=None, description="河水上涨",
                details={"sender": "s", "severity": "Severe", "urgency": None, "n": [1, 2.5]}),
    Observation(feed_event_id="x" * 200, start_time=0.0, camera="c", label="l" * 128,
                zones=tuple(f"z{i}" for i in range(64))),
]
TIMESTAMPS = [
    datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC),  # no microseconds: isoformat drops them
    datetime(2026, 3, 1, 20, 0, 0, 5, tzinfo=timezone(timedelta(hours=8))),
]


def _eventsourcing_json() -> JSONTranscoder:
    """eventsourcing's own default transcoder (what Application uses without ours)."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


MAPPERS = {
    "orjson": Mapper(OrjsonTranscoder()),
    "eventsourcing-json": Mapper(_eventsourcing_json()),
    "orjson+zlib": Mapper(OrjsonTranscoder(), compressor=ZlibCompressor()),
}


def _fast_and_slow(mapper: Mapper[UUID], obs: Observation, timestamp: datetime,
                   centers: list[str]) -> tuple[Any, Any]:
    grid = obs.grid or "grid-1"
    uuid = alert_id("frigate", obs.feed_event_id)
    event = CameraAlert.raised_event_of(uuid, CameraAlert.raised_fields(
        obs, feed="frigate", grid=grid, centers=centers, actor=FEED), timestamp)
    fields = CameraAlert.raised_fields(obs, feed="frigate", grid=grid, centers=centers, actor=FEED)
    fast = raised_stored_event(mapper, uuid, fields, timestamp)
    return fast, event


@pytest.mark.parametrize("mapper_name", sorted(MAPPERS))
@pytest.mark.parametrize("timestamp", TIMESTAMPS, ids=["micro", "whole", "offset"])
@pytest.mark.parametrize("obs", OBSERVATIONS, ids=lambda o: o.feed_event_id[:12])
def test_fast_raised_is_the_mapped_event_byte_for_byte(
    obs: Observation, timestamp: datetime, mapper_name: str
) -> None:
    mapper = MAPPERS[mapper_name]
    fast, event = _fast_and_slow(mapper, obs, timestamp, ["town", "district", "city"])
    slow = mapper.to_stored_event(event)
    assert _stored(fast) == slow  # originator id and version, topic and the state's bytes
    assert fast.state == slow.state
    decoded = mapper.to_domain_event(fast)
    assert type(decoded) is type(event)
    assert decoded == event
    assert vars(decoded) == vars(event)
    assert CameraAlert.from_raised(decoded).as_dict() == CameraAlert.from_raised(event).as_dict()


def _stored(event: StoredEvent) -> StoredEvent:
    """The StoredEvent fields alone (a KnownStateStoredEvent also carries its plain state)."""
    return StoredEvent(event.originator_id, event.originator_version, event.topic, event.state)


def test_service_mapper_takes_the_fast_path_bytes() -> None:
    """The application's own mapper (its transcoder and settings) gives the same bytes."""
    mapper = IncidentService(lambda grid: ["c"]).mapper
    for obs in OBSERVATIONS:
        fast, event = _fast_and_slow(mapper, obs, TIMESTAMPS[0], ["c"])
        assert _stored(fast) == mapper.to_stored_event(event)


@pytest.mark.parametrize("timestamp", TIMESTAMPS)
@pytest.mark.parametrize("obs", OBSERVATIONS, ids=lambda o: o.feed_event_id[:12])
def test_the_plain_state_carried_along_is_what_decoding_the_bytes_gives(
    obs: Observation, timestamp: datetime
) -> None:
    """What the projection runner takes from memory equals what it would read and decode."""
    fast, _event = _fast_and_slow(MAPPERS["orjson"], obs, timestamp, ["c"])
    assert isinstance(fast, KnownStateStoredEvent) and fast.plain_state is not None
    remembered = from_state(7, fast.originator_id, 1, fast.topic, dict(fast.plain_state))
    decoded = from_stored(7, fast.originator_id, 1, fast.topic, fast.state)
    assert remembered == decoded
    assert orjson.dumps(remembered.data) == orjson.dumps(decoded.data)  # key order too


@pytest.mark.parametrize("details", [
    {"n": float("inf")},  # JSON has no infinity: it would decode as null
    {"t": (1, 2)},  # a tuple decodes as a list
    {1: "x"},  # a non-string key decodes as a string
    {"nested": {"_type_": "uuid_hex", "_data_": "00"}},  # a tag the reader would untag
])
def test_no_plain_state_when_decoding_would_give_something_else(details: dict[Any, Any]) -> None:
    obs = Observation(feed_event_id="odd", start_time=START, grid="g", details=details)
    fast, _event = _fast_and_slow(MAPPERS["orjson"], obs, TIMESTAMPS[0], ["c"])
    assert getattr(fast, "plain_state", None) is None


def test_no_plain_state_when_the_bytes_are_not_plain_orjson() -> None:
    for name in ("eventsourcing-json", "orjson+zlib"):
        fast, _event = _fast_and_slow(MAPPERS[name], OBSERVATIONS[1], TIMESTAMPS[0], ["c"])
        assert getattr(fast, "plain_state", None) is None


def test_a_new_alert_takes_its_timestamp_from_the_clock() -> None:
    incidents = IncidentService(lambda grid: ["c"])
    before = datetime.now(UTC)
    events, _ = AlertDecider().decide("f", OBSERVATIONS[:1], [("g", ["c"])], FEED,
                                      RecorderAlerts(incidents))
    assert isinstance(events[0], NewAlert)
    assert before <= events[0].timestamp <= datetime.now(UTC)
