"""The three change operations that deltas carry."""

from __future__ import annotations

import pytest

from projections.patch import apply_changes, del_, push, set_


def test_set_creates_intermediate_objects() -> None:
    view: dict = {}
    apply_changes(view, [set_(["open", "a", "status"], "accepted")])
    assert view == {"open": {"a": {"status": "accepted"}}}


def test_del_of_a_missing_key_is_harmless() -> None:
    view: dict = {"open": {"a": 1}}
    apply_changes(view, [del_(["open", "b"]), del_(["nothing", "x"]), del_(["open", "a"])])
    assert view == {"open": {}}


def test_push_keeps_newest_first_skips_repeats_and_bounds_the_list() -> None:
    view: dict = {}
    for n in (1, 3, 2, 3, 5):
        apply_changes(view, [push(["recent"], {"n": n}, 3)])
    assert [item["n"] for item in view["recent"]] == [5, 3, 2]


def test_an_unknown_op_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown change op"):
        apply_changes({}, [{"op": "move", "path": ["a"]}])  # type: ignore[typeddict-item]
