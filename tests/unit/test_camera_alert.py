"""CameraAlert lifecycle, idempotent ingest and rule firings (the in-process store on an
in-memory event store)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alert_decision import AlertDecider
from domain.alert_rules import RuleError, parse_rules
from domain.alert_service import AlertService, UnknownCamera
from domain.application import IncidentService
from domain.camera_alert import AlertAlreadyHandled, CameraAlert, Observation, iso
from domain.incident import Actor, Incident
from infra.ingest.alert_store import RecorderAlertStore

FEED: Actor = {"user": "frigate", "role": "feed", "center": None}
OFFICER: Actor = {"user": "duty", "role": "city_officer", "center": None}
CENTERS = ("town", "district", "city")
RULES = {
    "rules": [
        {"name": "fire_in_zone", "labels": ["fire", "smoke"], "min_score": 0.8,
         "zones": ["stairwell"], "action": "open_incident", "severity": "major",
         "category": "fire_hazard"},
        {"name": "watch_plate", "plates": ["冀G 12345"], "action": "raise_priority",
         "priority": "critical"},
        {"name": "loitering", "labels": ["person"], "min_duration": 300,
         "action": "raise_priority"},
    ]
}


def service(rules: dict | None = None) -> AlertService:  # type: ignore[type-arg]
    incidents = IncidentService(lambda grid: CENTERS)
    cameras = {"cam-1": "grid-1", "cam-2": "grid-2"}
    store = RecorderAlertStore(incidents, AlertDecider(parse_rules(rules or RULES)))
    return AlertService(incidents, store, store.stored, cameras.__getitem__, lambda grid: CENTERS)


def obs(event_id: str = "e1", phase: str = "new", **fields: object) -> Observation:
    values: dict = {"camera": "cam-1", "label": "person", "score": 0.6, "start_time": 1_800_000_000.0}  # type: ignore[type-arg]
    values.update(fields)
    return Observation(feed_event_id=event_id, phase=phase, **values)


def events_of(svc: AlertService, alert_ref: str) -> list[str]:
    alert = svc.get(alert_ref)
    return [type(e).__name__ for e in svc.incidents.events.get(alert.id)]


def test_frigate_new_update_end_makes_one_alert() -> None:
    svc = service()
    first = svc.ingest("frigate", [obs(phase="new")], FEED)[0]
    second = svc.ingest("frigate", [obs(phase="update", score=0.7, top_score=0.75)], FEED)[0]
    third = svc.ingest("frigate", [obs(phase="end", score=0.7, end_time=1_800_000_030.0)], FEED)[0]
    assert [first.status, second.status, third.status] == ["created", "updated", "ended"]
    assert first.alert == second.alert == third.alert
    alert = svc.get(first.alert)
    assert (alert.score, alert.top_score, alert.ended, alert.end_time) == (0.7, 0.75, True, 1_800_000_030.0)
    assert events_of(svc, first.alert) == ["Raised", "Updated", "Ended"]


def test_duplicate_delivery_changes_nothing() -> None:
    svc = service()
    svc.ingest("frigate", [obs(), obs(phase="update", score=0.9)], FEED)
    before = svc.incidents.recorder.max_notification_id()
    again = svc.ingest("frigate", [obs(), obs(phase="update", score=0.9)], FEED)
    assert [o.status for o in again] == ["duplicate", "duplicate"]
    assert svc.incidents.recorder.max_notification_id() == before


def test_same_event_id_from_another_feed_is_another_alert() -> None:
    svc = service()
    a = svc.ingest("feed-a", [obs()], FEED)[0]
    b = svc.ingest("feed-b", [obs()], FEED)[0]
    assert a.alert != b.alert


def test_unknown_camera_refuses_the_whole_batch() -> None:
    svc = service()
    with pytest.raises(UnknownCamera, match="alert #1: camera 'cam-404'"):
        svc.ingest("frigate", [obs("ok"), obs("bad", camera="cam-404")], FEED)
    assert svc.incidents.recorder.max_notification_id() in (None, 0)


def test_fire_rule_opens_major_incident_and_records_why() -> None:
    svc = service()
    outcome = svc.ingest(
        "frigate", [obs(label="fire", score=0.91, zones=("stairwell",))], FEED)[0]
    assert outcome.rules == ["fire_in_zone"] and outcome.incident
    incident = svc.incidents.get(outcome.incident)
    assert isinstance(incident, Incident)
    assert (incident.severity, incident.category, incident.centers) == ("major", "fire_hazard", list(CENTERS))
    assert incident.reported_by["user"] == "rule:fire_in_zone"
    alert = svc.get(outcome.alert)
    assert alert.disposition == "escalated" and alert.incident == outcome.incident
    fired = list(svc.incidents.events.get(alert.id))[-1]
    assert type(fired).__name__ == "RuleFired"
    assert "stairwell" in fired.reason  # type: ignore[attr-defined]


def test_fire_rule_waits_for_score_and_fires_once() -> None:
    svc = service()
    low = svc.ingest("frigate", [obs(label="smoke", score=0.5, zones=("stairwell",))], FEED)[0]
    assert low.rules == []
    high = svc.ingest("frigate", [obs(phase="update", label="smoke", score=0.85)], FEED)[0]
    assert high.rules == ["fire_in_zone"]
    again = svc.ingest("frigate", [obs(phase="update", label="smoke", score=0.95)], FEED)[0]
    assert again.rules == [] and again.incident is None


def test_watch_listed_plate_raises_priority() -> None:
    svc = service()
    out = svc.ingest("frigate", [obs(label="car", plate="冀G12345")], FEED)[0]
    assert out.rules == ["watch_plate"]
    assert svc.get(out.alert).priority == "critical"


def test_loitering_uses_alert_time_not_clock() -> None:
    svc = service()
    svc.ingest("frigate", [obs(seen_time=1_800_000_100.0)], FEED)
    out = svc.ingest("frigate", [obs(phase="update", seen_time=1_800_000_400.0)], FEED)[0]
    assert out.rules == ["loitering"]
    assert svc.get(out.alert).priority == "high"


def test_officer_actions_follow_disposition() -> None:
    svc = service()
    out = svc.ingest("frigate", [obs()], FEED)[0]
    data = svc.act(out.alert, "acknowledge", actor=OFFICER)
    assert data["disposition"] == "acknowledged"
    with pytest.raises(AlertAlreadyHandled, match="cannot acknowledge an alert that is 'acknowledged'"):
        svc.act(out.alert, "acknowledge", actor=OFFICER)
    data = svc.act(out.alert, "create-incident", actor=OFFICER, severity="major")
    incident = svc.incidents.get(data["incident"])
    assert incident.severity == "major" and incident.external_id == f"alert:{out.alert}"
    with pytest.raises(AlertAlreadyHandled):
        svc.act(out.alert, "dismiss", actor=OFFICER, reason="false positive")


def test_dismiss_needs_a_reason() -> None:
    svc = service()
    out = svc.ingest("frigate", [obs()], FEED)[0]
    with pytest.raises(Exception, match="needs a reason"):
        svc.act(out.alert, "dismiss", actor=OFFICER, reason=" ")
    assert svc.act(out.alert, "dismiss", actor=OFFICER, reason="shadow")["disposition"] == "dismissed"


def test_alert_id_is_stable() -> None:
    assert CameraAlert.create_id("frigate", "x") == CameraAlert.create_id("frigate", "x")


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"rules": [{"name": "a", "labels": ["fire"], "action": "explode"}]}, "rule 'a': action must be one of"),
        ({"rules": [{"name": "b", "labels": ["fire"], "min_score": 1.5, "action": "open_incident"}]},
         "rule 'b': min_score must be between 0.0 and 1.0; got 1.5"),
        ({"rules": [{"name": "c", "action": "raise_priority"}]}, "rule 'c': has no condition"),
        ({"rules": [{"labels": ["x"], "action": "raise_priority"}]}, "rule #1: needs a non-empty string 'name'"),
        ({"rules": [{"name": "d", "labels": ["x"], "action": "raise_priority", "colour": 1}]},
         "rule 'd': unknown setting"),
        ({"rules": [{"name": "e", "labels": ["x"], "action": "open_incident", "severity": "huge"}]},
         "rule 'e': severity must be one of routine, major"),
        ({"rules": [{"name": "f", "labels": "x", "action": "raise_priority"},
                    {"name": "f", "labels": "y", "action": "raise_priority"}]}, "rule 'f': the name is used twice"),
        ({"rules": [{"name": "g", "min_duration": -1, "action": "raise_priority"}]}, "rule 'g': min_duration must be at least"),
    ],
)
def test_bad_rule_names_the_rule_and_the_problem(rules: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(RuleError, match=message.replace("(", r"\(")):
        parse_rules(rules)


def test_fast_path_stores_the_same_alert_the_aggregate_would() -> None:
    svc = service()
    observation = obs("fast", label="car", score=0.55, zones=("gate",), seen_time=1_800_000_005.0)
    out = svc.ingest("frigate", [observation], FEED)[0]
    stored = svc.get(out.alert).as_dict()
    built = CameraAlert.raise_(observation, feed="frigate", grid="grid-1", centers=list(CENTERS),
                               actor=FEED).as_dict()
    for key in ("created_at", "updated_at"):
        stored.pop(key), built.pop(key)
    assert stored == built
    assert stored["last_seen"] == 1_800_000_005.0


def test_new_and_update_in_one_batch_make_one_alert_in_order() -> None:
    svc = service()
    outcomes = svc.ingest("frigate", [obs("b1"), obs("b1", phase="update", score=0.9),
                                      obs("b1", phase="end", score=0.9, end_time=1_800_000_050.0)], FEED)
    assert [o.status for o in outcomes] == ["created", "updated", "ended"]
    assert events_of(svc, outcomes[0].alert) == ["Raised", "Updated", "Ended"]
    notifications = svc.incidents.recorder.select_notifications(start=1, limit=10)
    assert [n.topic.rsplit(".", 1)[-1] for n in notifications] == ["Raised", "Updated", "Ended"]


def test_fast_path_alerts_touched_again_later_in_the_batch_keep_their_raised_event() -> None:
    svc = service()
    batch = [obs("a", camera="cam-1"), obs("b", camera="cam-2"),
             obs("c", camera="cam-2", label="car", plate="冀G12345"),  # a rule fires on c
             obs("b", phase="update", camera="cam-2", score=0.9),
             obs("a", phase="end", camera="cam-1", end_time=1_800_000_100.0)]  # < 300 s: no loitering
    outcomes = svc.ingest("frigate", batch, FEED)
    assert [o.status for o in outcomes] == ["created", "created", "created", "updated", "ended"]
    assert outcomes[2].rules == ["watch_plate"]
    notifications = svc.incidents.recorder.select_notifications(start=1, limit=20)
    assert [(str(n.originator_id), n.originator_version, n.topic.rsplit(".", 1)[-1])
            for n in notifications] == [
        (outcomes[0].alert, 1, "Raised"), (outcomes[1].alert, 1, "Raised"),
        (outcomes[2].alert, 1, "Raised"), (outcomes[2].alert, 2, "RuleFired"),
        (outcomes[1].alert, 2, "Updated"), (outcomes[0].alert, 2, "Ended")]
    b = svc.get(outcomes[1].alert)
    assert (b.grid, b.camera, b.score, b.version) == ("grid-2", "cam-2", 0.9, 2)
    a = svc.get(outcomes[0].alert)
    assert a.grid == "grid-1" and a.ended and a.last_seen == 1_800_000_100.0
    raised = svc.incidents.mapper.to_domain_event(notifications[0])
    assert a.created_on == raised.timestamp


@settings(max_examples=3000, deadline=None)
@given(st.one_of(
    st.floats(min_value=0, max_value=253_402_300_798, allow_nan=False),
    st.integers(0, 4_000_000_000).flatmap(  # whole seconds plus fractions near rounding edges
        lambda s: st.sampled_from([5e-7, 1.5e-6, 2.5e-6, 0.9999995, 0.9999985, 0.5]).map(
            lambda f: s + f)),
    st.integers(-10**6, 10**10),
))
def test_iso_formats_exactly_as_datetime_does(at: float) -> None:
    assert iso(at) == datetime.fromtimestamp(at, UTC).isoformat()
