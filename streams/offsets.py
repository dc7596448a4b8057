"""Which records of a batch an agent may process: each partition's records in offset order, none
skipped.

faust's consumer can drop fetched records without a word (its reading loop abandons the rest of
a fetch, or moves its read offset past a seek, around a worker's start), and then counts the
offsets it never delivered as a gap it commits past. A record skipped so is lost: the `project`
agent folds the center's later events, and the skipped ones, arriving again, are below its
applied mark. Seen after a worker was SIGKILLed and restarted: a by-center record at offset 80
never reached the agent (79, then 81), and consoles missed its deltas; or the events agent got
722, then 725.

The offsets of these topics are consecutive (no compaction, no transactions), so a record past
the next one expected means records were skipped: nothing of that partition past the gap is
processed until the missing records are there (streams/app.py reads them from the broker).
Pure functions: the agents keep the expectations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Admitted:
    take: list[int]  # indexes of the records to process, in the batch's order
    seek: dict[int, int]  # partition -> the first offset missing


def admit(records: Iterable[tuple[int, int]], expected: dict[int, int]) -> Admitted:
    """Split a batch's (partition, offset)s by the next offset each partition should deliver
    (`expected`; a partition without one takes whatever comes first): the next record is taken,
    and the expectation moves past it; one before it is left out (read already: a redelivery);
    one after it waits: unless the missing ones come later in the batch, the partition's first
    missing offset is in `seek`. `expected` changes in place."""
    take: list[int] = []
    furthest: dict[int, int] = {}
    for i, (partition, offset) in enumerate(records):
        furthest[partition] = max(offset, furthest.get(partition, offset))
        want = expected.get(partition)
        if want is None or offset == want:
            take.append(i)
            expected[partition] = offset + 1
    seek = {partition: expected[partition] for partition, offset in furthest.items()
            if offset >= expected[partition]}
    return Admitted(take, seek)
