"""Feed decoders: JSON alerts, Frigate events (CAP is covered end to end)."""

from __future__ import annotations

import orjson
import pytest

from command_center.feed_formats import FeedError, decode_alerts, decode_frigate
from domain.camera_alert import Observation

ALERT = {"id": "e1", "camera": "cam-1", "start_time": 1_800_000_000}


def test_one_alert_or_a_batch() -> None:
    assert [o.feed_event_id for o in decode_alerts(orjson.dumps(ALERT))] == ["e1"]
    batch = orjson.dumps({"alerts": [ALERT, {**ALERT, "id": "e2"}]})
    assert [o.feed_event_id for o in decode_alerts(batch)] == ["e1", "e2"]


def test_a_single_alert_that_mentions_alerts_early_still_decodes() -> None:
    body = orjson.dumps({"camera": "alerts", "id": "e1", "start_time": 1_800_000_000})
    assert decode_alerts(body)[0].camera == "alerts"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"[1, 2]", 400, "malformed JSON"),
        (b"{", 400, "malformed JSON"),
        (orjson.dumps({"alerts": []}), 422, "batch is empty"),
        (orjson.dumps({"alerts": [ALERT] * 1001}), 413, "at most 1000"),
        (orjson.dumps({"alerts": [{**ALERT, "score": 2}]}), 422, "alerts[0].score"),
        (orjson.dumps({**ALERT, "colour": "red"}), 422, "colour"),
        (orjson.dumps({"id": "x", "camera": "c"}), 422, "start_time"),
    ],
)
def test_bad_alert_bodies(body: bytes, status: int, words: str) -> None:
    with pytest.raises(FeedError) as caught:
        decode_alerts(body)
    assert caught.value.status == status and words in caught.value.detail


def test_frigate_event_uses_the_after_state() -> None:
    after = {"id": "f1", "camera": "cam-1", "label": "car", "score": 0.7, "top_score": 0.8,
             "current_zones": ["gate"], "start_time": 1_800_000_000.5, "end_time": None,
             "false_positive": False, "sub_label": "冀G12345"}
    obs = decode_frigate(orjson.dumps({"type": "update", "before": {}, "after": after}))
    assert (obs.phase, obs.top_score, obs.zones, obs.plate) == ("update", 0.8, ("gate",), "冀G12345")


@pytest.mark.parametrize(
    ("payload", "status"),
    [(b"not json", 400), (orjson.dumps({"type": "new"}), 422),
     (orjson.dumps({"type": "explode", "after": {}}), 422),
     (orjson.dumps({"type": "new", "after": {"id": "f", "camera": "c", "label": "car",
                                             "start_time": 1e20}}), 422)],
)
def test_bad_frigate_payloads(payload: bytes, status: int) -> None:
    with pytest.raises(FeedError) as caught:
        decode_frigate(payload)
    assert caught.value.status == status


def test_every_alert_field_lands_in_its_observation_field() -> None:
    body = (b'{"id": "e-1", "camera": "cam-1", "grid": "g-1", "type": "end", "kind": "sensor",'
            b' "label": "smoke", "score": 0.25, "top_score": 0.75, "zones": ["a", "b"],'
            b' "plate": "P 1", "start_time": 10.5, "end_time": 20.5, "frame_time": 19.5,'
            b' "false_positive": true, "description": "d"}')
    assert decode_alerts(body) == [Observation(
        feed_event_id="e-1", start_time=10.5, phase="end", kind="sensor", camera="cam-1",
        grid="g-1", label="smoke", score=0.25, top_score=0.75, zones=("a", "b"), plate="P 1",
        end_time=20.5, seen_time=19.5, false_positive=True, description="d", details={})]
    at = decode_alerts(b'{"id": "e-2", "grid": "g", "at": "2026-01-01T08:00:00+08:00"}')[0]
    assert at == Observation(feed_event_id="e-2", grid="g", start_time=1767225600.0)
