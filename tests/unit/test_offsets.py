"""An agent processes each partition's records in offset order with none skipped (streams/offsets.py),
and the worker's table says where each by-center partition resumes (streams/center_table.py)."""

from __future__ import annotations

from streams.center_table import load, next_offsets, offset_key, offset_write
from streams.offsets import admit


def test_consecutive_records_are_taken_and_the_expectation_moves_past_them() -> None:
    expected = {0: 5}
    admitted = admit([(0, 5), (1, 9), (0, 6), (1, 10)], expected)
    assert admitted.take == [0, 1, 2, 3]
    assert admitted.seek == {}
    assert expected == {0: 7, 1: 11}  # partition 1 had no expectation: it took what came


def test_a_skipped_offset_holds_back_the_rest_of_its_partition_and_asks_to_read_it_again() -> None:
    # what a restarted worker saw: 79, then 81; offset 80 never reached the agent
    expected = {0: 79}
    admitted = admit([(0, 79), (1, 3), (0, 81), (1, 4), (0, 82)], expected)
    assert admitted.take == [0, 1, 3]  # 81 and 82 wait for 80: nothing folds past a gap
    assert admitted.seek == {0: 80}
    assert expected == {0: 80, 1: 5}
    # read again from 80: records still buffered past the gap come first and wait again,
    # then 80 and what follows are taken, and the old copies of 81 and 82 are left out
    again = admit([(0, 81), (0, 80), (0, 81), (0, 82), (0, 81)], expected)
    assert again.take == [1, 2, 3]
    assert again.seek == {}
    assert expected == {0: 83, 1: 5}
    # the copies still buffered alone: wait, and ask again
    assert admit([(0, 81), (0, 82)], {0: 80}).seek == {0: 80}


def test_records_before_the_expected_offset_are_redeliveries_and_left_out() -> None:
    expected = {0: 10}
    admitted = admit([(0, 8), (0, 9), (0, 10)], expected)
    assert admitted.take == [2]
    assert expected == {0: 11}


def test_the_table_marks_where_each_partition_resumes_and_loading_centers_ignores_the_marks() -> None:
    meta = {"epoch": "e", "seq": 0, "applied": {}, "batch": 1, "partition": 1}
    items = [("city", meta), *[(key, value) for _, key, value in (offset_write(1, 41),
                                                                 offset_write(0, 7))]]
    assert next_offsets(items) == {1: 42, 0: 8}
    states, repairs = load(items, 10)
    assert set(states) == {"city"} and repairs == []
    assert offset_key(1) != offset_key(0) and "city" not in offset_key(1)
