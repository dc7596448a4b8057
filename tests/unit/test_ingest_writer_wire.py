"""The ingest writer's wire: what the HTTP process sends is what the writer process stores."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.camera_alert import Observation
from infra.ingest.writer import WriterProcess, decode_request, encode_request
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
