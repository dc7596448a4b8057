"""An agent processes each partition's records in offset order with none skipped (streams/offsets.py),
and the worker's table says where each by-center partition resumes (streams/center_table.py)."""

from __future__ import annotations

from typing import Any

from streams.app import admitted
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


class _Message:
    def __init__(self, partition: int, offset: int) -> None:
        self.partition, self.offset = partition, offset


class _Event:
    """What the agents read of a faust event: its message's partition and offset, its value."""

    def __init__(self, partition: int, offset: int) -> None:
        self.message, self.value = _Message(partition, offset), f"{partition}:{offset}".encode()


class _Broker:
    """A hand-written broker: a partition's records from an offset, as the agent's reader."""

    def __init__(self, first: int = 0) -> None:
        self.first = first
        self.reads: list[tuple[int, int, int]] = []

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
        self.reads.append((partition, start, end))
        return [_Event(partition, o) for o in range(max(start, self.first), end)]


def _taken(events: list[Any]) -> list[tuple[int, int]]:
    return [(e.message.partition, e.message.offset) for e in events]


async def test_an_agent_reads_the_records_the_consumer_skipped_and_takes_them_in_their_place() -> None:
    broker = _Broker()
    expected = {0: 540}
    batch = [_Event(0, o) for o in (540, 541, 542, 543, 547, 548)] + [_Event(1, 9)]
    taken = await admitted(broker.read, "events", batch, expected)
    assert broker.reads == [(0, 544, 547)]
    assert _taken(taken) == [(0, o) for o in range(540, 549)] + [(1, 9)]
    assert expected == {0: 549, 1: 10}
    # the copies faust delivers later are left out
    later = await admitted(broker.read, "events", [_Event(0, 545), _Event(0, 549)], expected)
    assert _taken(later) == [(0, 549)]
    assert expected == {0: 550, 1: 10} and len(broker.reads) == 1


async def test_records_the_broker_no_longer_holds_are_passed_over_once() -> None:
    broker = _Broker(first=545)  # retention took 544
    expected = {0: 544}
    taken = await admitted(broker.read, "events", [_Event(0, 546)], expected)
    assert _taken(taken) == [(0, 545), (0, 546)]
    assert expected == {0: 547}


async def test_when_the_broker_does_not_answer_nothing_past_the_gap_is_taken_until_it_does() -> None:
    async def down(topic: str, partition: int, start: int, end: int) -> list[Any]:
        raise ConnectionError("broker unreachable")

    expected = {0: 10}
    taken = await admitted(down, "events", [_Event(0, 10), _Event(0, 12)], expected)
    assert _taken(taken) == [(0, 10)] and expected == {0: 11}
    broker = _Broker()
    taken = await admitted(broker.read, "events", [_Event(0, 13)], expected)
    assert _taken(taken) == [(0, 11), (0, 12), (0, 13)] and expected == {0: 14}
