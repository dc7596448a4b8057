"""The ingest limits (domain/ingest_limits.py) and the bounded JSON decoder
(command_center/decoding.py); no services. End to end: tests/e2e/test_ingest_limits.py."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import orjson
import pytest

from command_center.decoding import InputError, JsonDecoder, nesting_depth
from command_center.feed_formats import (
    AlertBatch,
    AlertIn,
    FeedError,
    FrigateEvent,
    decode_alerts,
    decode_frigate,
)
from command_center.feed_ws import FeedMessage
from command_center.ingest import AlertAction, StormAck
from command_center.schemas import ACTION_BODIES, ReportIncident
from domain.camera_alert import CameraAlert, Observation
from domain.incident import Actor, InvalidCommand
from domain.ingest_limits import EARLIEST, LATEST, MAX_JSON_DEPTH, time_problem
from projections.storm import WINDOWS, window_start


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(("text", "depth"), [
    (b"{}", 1),
    (b'{"a": [1, {"b": []}], "c": {}}', 3),
    (b'{"a": "[[[[' + b"[" * 100 + b'"}', 1),  # brackets in a string do not count
    (b'{"a": "\\"' + b"[" * 100 + b'\\\\", "b": ' + deep(40) + b"}", 41),  # escaped quotes
    (b'["unterminated \\" ' + b"[" * 100, 1),
    (b'{"x": ' + deep(MAX_JSON_DEPTH + 1) + b"}", MAX_JSON_DEPTH + 2),
])
def test_nesting_depth_counts_arrays_and_objects_outside_strings(text: bytes, depth: int) -> None:
    counted = nesting_depth(text)
    if depth <= MAX_JSON_DEPTH:
        assert counted <= MAX_JSON_DEPTH
    else:
        assert counted == depth
    assert nesting_depth(text.decode()) == counted


def test_a_text_of_escaped_quotes_never_closing_is_counted_in_one_pass() -> None:
    # Retrying a failed string match from each quote inside it would take hours here.
    assert nesting_depth(b'{"a": "' + b'\\"[' * 200_000) == 1
    assert nesting_depth(b'"' + b'\\"[' * 200_000 + b"\\") == 0


def test_schemas_that_fix_their_own_depth_are_not_counted_after_decoding() -> None:
    closed = [AlertBatch, AlertIn, FeedMessage, AlertAction, StormAck, ReportIncident,
              *ACTION_BODIES.values()]
    assert all(JsonDecoder(t, "x").closed for t in closed)
    assert not JsonDecoder(FrigateEvent, "x").closed  # Frigate's other fields are skipped


@pytest.mark.parametrize("body", [
    b'{"alerts":' + deep(1000) + b"}",
    b'{"id":' + deep(1000) + b"}",
    b'{"alerts": [{"id": "a", "zones": ' + deep(200_000) + b"}]}",
    b'{"colour":' + deep(MAX_JSON_DEPTH) + b"}",
])
def test_deeply_nested_alert_bodies_are_400(body: bytes) -> None:
    with pytest.raises(FeedError) as caught:
        decode_alerts(body)
    assert caught.value.status == 400 and "nested" in caught.value.detail


def test_a_decoder_never_lets_a_recursion_error_out() -> None:
    class Anything(msgspec.Struct):
        value: object = None

    with pytest.raises(InputError) as caught:
        JsonDecoder(Anything, "thing").decode(b'{"value":' + deep(100_000) + b"}")
    assert caught.value.status == 400


def test_time_range_edges_in_utc() -> None:
    assert time_problem(EARLIEST) is None and time_problem(LATEST) is None
    assert "before 1970-01-01T00:00:00Z" in str(time_problem(-0.5))
    assert "after 9999-12-31T00:00:00Z" in str(time_problem(LATEST + 0.5))


def test_the_latest_time_keeps_every_storm_window_in_the_calendar() -> None:
    for size in WINDOWS:
        end = window_start(LATEST + 59.9, size) + size
        assert datetime.fromtimestamp(end, UTC).year == 9999


def test_the_domain_refuses_a_start_time_out_of_range_whatever_the_path() -> None:
    actor: Actor = {"user": "feed:x", "role": "feed", "center": None}
    for start in (-62_135_647_200.0, LATEST + 1, float("nan")):
        with pytest.raises(InvalidCommand, match="start time"):
            CameraAlert.raised_fields(Observation("e", start), feed="x", grid="g",
                                      centers=["c"], actor=actor)


def test_frigate_sub_labels_name_or_pair_and_a_long_one_is_no_plate() -> None:
    after = {"id": "f1", "camera": "cam-1", "label": "car", "start_time": 1_800_000_000}
    pair = decode_frigate(orjson.dumps({"type": "new", "after": {**after, "sub_label": ["Li", 0.9]}}))
    assert pair.plate is None
    name = "the neighbour's long red car, parked"
    named = decode_frigate(orjson.dumps({"type": "new", "after": {**after, "sub_label": name}}))
    assert named.plate is None
    plate = decode_frigate(orjson.dumps({"type": "new", "after": {**after, "sub_label": "冀G1"}}))
    assert plate.plate == "冀G1"
