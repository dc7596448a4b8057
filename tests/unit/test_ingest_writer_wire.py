"""The ingest writer's wire: what the HTTP process sends is what the writer process stores."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alert_service import UnknownArea, UnknownCamera
from domain.alert_store import IngestUnavailable
from domain.application import NotFound, UnknownGrid, VersionConflict
from domain.camera_alert import AlertAlreadyHandled, Observation
from domain.incident import DomainError, IllegalTransition, InvalidCommand, Status
from infra.ingest.writer import WriterProcess
from infra.ingest.writer_wire import (
    REFUSALS,
    Failed,
    Refused,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    rebuilt,
    refused,
    unavailable,
)
from infra.settings import Settings

text = st.text(max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | finite | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
observations = st.builds(
    Observation,
    feed_event_id=text,
    start_time=finite,
    phase=st.sampled_from(["new", "update", "end"]),
    kind=st.sampled_from(["camera", "sensor"]),
    camera=st.none() | text,
    grid=st.none() | text,
    label=text,
    score=st.none() | finite,
    top_score=st.none() | finite,
    zones=st.lists(text, max_size=3).map(tuple),
    plate=st.none() | text,
    end_time=st.none() | finite,
    seen_time=st.none() | finite,
    false_positive=st.booleans(),
    description=text,
    details=st.dictionaries(text, json_value, max_size=3),
)


@settings(max_examples=300)
@given(
    feed=text,
    batch=st.lists(observations, max_size=5),
    located=st.lists(st.tuples(text, st.lists(text, max_size=3)), max_size=5),
    actor=st.fixed_dictionaries({"user": text, "role": st.just("feed"), "center": st.none() | text}),
    key_id=st.none() | text,
)
def test_a_batch_crosses_the_wire_unchanged(feed: str, batch: list[Observation],
                                           located: list[tuple[str, list[str]]],
                                           actor: dict[str, Any], key_id: str | None) -> None:
    got_feed, got_batch, got_located, got_actor, got_key = decode_request(
        encode_request((feed, batch, located, actor, key_id)))
    assert got_feed == feed
    assert got_batch == batch  # dataclass equality: every field, types included
    assert [type(o) for o in got_batch] == [Observation] * len(batch)
    assert [type(o.zones) for o in got_batch] == [tuple] * len(batch)
    assert got_located == [(grid, centers) for grid, centers in located]
    assert got_actor == actor
    assert got_key == key_id


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_a_writer_needs_a_positive_timeout(tmp_path: Any, timeout: float) -> None:
    with pytest.raises(ValueError, match="LINKAGE_INGEST_TIMEOUT must be more than 0"):
        WriterProcess(Settings().with_(data_dir=tmp_path), timeout=timeout)


ERRORS = [
    InvalidCommand("alert kind must be one of camera, sensor, cap; got 'drone'"),
    DomainError("incident x is closed; link the alert to an open incident"),
    UnknownCamera("cam-9", 3),
    UnknownCamera(None),
    UnknownArea("grid 'g-9' is not in the jurisdiction tree", 0),
    AlertAlreadyHandled("acknowledge", "dismissed"),
    NotFound("alert 'x' not found"),
    VersionConflict("alert x was changed by another command at the same time; retry"),
    UnknownGrid("grid 'g' is not in the jurisdiction tree"),
]


def _across(error: DomainError) -> DomainError:
    reply = decode_reply(encode_reply(refused(error)))
    assert isinstance(reply, Refused)
    return rebuilt(reply)


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_a_domain_error_crosses_the_wire_as_the_same_class(error: DomainError) -> None:
    back = _across(error)
    assert type(back) is type(error)
    assert str(back) == str(error) and back.args == error.args
    assert vars(back) == vars(error)


def test_every_listed_refusal_is_tested() -> None:
    assert set(REFUSALS) == {type(e).__name__ for e in ERRORS}


def test_an_unlisted_domain_error_crosses_as_its_nearest_listed_base() -> None:
    class Odd(InvalidCommand):
        pass

    back = _across(Odd("odd value"))
    assert type(back) is InvalidCommand and str(back) == "odd value"
    transition = IllegalTransition("accept", Status.CLOSED, ())
    back = _across(transition)
    assert type(back) is DomainError and str(back) == str(transition)


def test_any_other_failure_becomes_ingest_unavailable_naming_it() -> None:
    reply = decode_reply(encode_reply(Failed("OperationalError: disk I/O error")))
    assert isinstance(reply, Failed)
    error = unavailable(reply)
    assert isinstance(error, IngestUnavailable) and error.retry_after == 1.0
    assert "OperationalError: disk I/O error" in str(error) and "send it again" in str(error)
