"""How the worker keeps center states in its changelogged table: records of bounded size.

Keys, all on the center's partition of the by-center topic:
- `<center>`: the meta record `{epoch, seq, applied, batch, partition}`;
- `<center>\\x1fview\\x1f<record>`: one record of the view (projections/records.py), except the
  queue, which is derived from the open cases;
- `<center>\\x1fcase\\x1f<incident id>`: one open case under the center.
So no record grows with the number of open cases, and a batch writes only what it touched.

A batch's writes are several changelog records, which Kafka does not write atomically. So each
record carries the batch that wrote it and the value it replaced (`{"b", "p", "v", "was"}`),
and the meta record, written last, names the last complete batch. A worker that died in the
middle of a batch comes back with records ahead of the meta: `load` takes their old values and
rewrites them, and the batch's events, redelivered, are folded again. Pure functions: the
agent in streams/app.py does the writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from projections.cases import Case
from projections.center_view import new_view, restored
from projections.queue import OpenCases
from projections.records import QUEUE, record_value, view_from_records
from streams.folding import CenterState

SEP = "\x1f"
VIEW = "view"
CASE = "case"
Write = tuple[int, str, Any]  # (partition, key, value; None deletes the key)


OFFSET = "offset"


def offset_key(partition: int) -> str:
    return f"{SEP}{OFFSET}{SEP}{partition}"


def offset_write(partition: int, offset: int) -> Write:
    """The marker saying the partition's records up to `offset` are folded and stored."""
    return (partition, offset_key(partition), {"o": offset, "p": partition})


def next_offsets(items: Iterable[tuple[str, Any]]) -> dict[int, int]:
    """Per by-center partition, the offset to read on from, from the table's markers."""
    return {int(value["p"]): int(value["o"]) + 1 for key, value in items
            if key.startswith(SEP) and isinstance(value, dict)}


def view_key(center: str, name: str) -> str:
    return f"{center}{SEP}{VIEW}{SEP}{name}"


def case_key(center: str, case_id: str) -> str:
    return f"{center}{SEP}{CASE}{SEP}{case_id}"


def _copy(value: Any) -> Any:
    """A copy the fold never changes: the value may be serialized after later batches ran."""
    return orjson.loads(orjson.dumps(value)) if isinstance(value, (dict, list)) else value


def load(items: Iterable[tuple[str, Any]], queue_size: int) -> tuple[dict[str, CenterState],
                                                                     list[Write]]:
    """Center states from the table's (key, value)s, and the writes that repair it.

    A record written by a batch after the meta record's is rolled back to the value it
    replaced; a deleted record that is still there is deleted."""
    metas: dict[str, dict[str, Any]] = {}
    records: dict[str, list[tuple[str, str, str, dict[str, Any]]]] = {}
    for key, value in items:
        if not isinstance(value, dict) or key.startswith(SEP):  # not a center's (a marker)
            continue
        center, sep, rest = key.partition(SEP)
        if not sep:
            metas[center] = value
            continue
        kind, _, name = rest.partition(SEP)
        records.setdefault(center, []).append((key, kind, name, value))
    states: dict[str, CenterState] = {}
    repairs: list[Write] = []
    for center in metas.keys() | records.keys():
        meta = metas.get(center)
        committed = int(meta["batch"]) if meta else 0
        view_part: dict[str, Any] = {}
        cases: list[Case] = []
        for key, kind, name, record in records.get(center, []):
            value = record.get("v")
            if int(record.get("b", 0)) > committed:
                value = record.get("was")
                repairs.append((int(record["p"]), key, None if value is None else
                                {"b": committed, "p": record["p"], "v": value, "was": value}))
            elif value is None:
                repairs.append((int(record["p"]), key, None))
            if value is None:
                continue
            if kind == CASE:
                cases.append(value)
            elif kind == VIEW:
                view_part[name] = value
        if meta is None:
            continue
        view = view_from_records(new_view(center), view_part)
        states[center] = CenterState(
            restored(view, OpenCases(cases), queue_size),
            epoch=str(meta["epoch"]),
            seq=int(meta["seq"]),
            applied={str(k): int(v) for k, v in meta["applied"].items()},
            batch=committed,
        )
    return states, repairs


def batch_writes(state: CenterState, partition: int, batch: int, view_records: set[str],
                 case_ids: set[str], stored: Callable[[str], Any]) -> list[Write]:
    """The writes that store a batch's changes to a center, in order: the records it touched
    (with the value each replaces, from `stored(key)`), the meta record naming `batch`, then
    the deletions of records the batch removed."""
    center = state.center.view["center"]
    writes: list[Write] = []
    deleted: list[Write] = []

    def put(key: str, value: Any) -> None:
        old = stored(key)
        was = old.get("v") if isinstance(old, dict) else None
        if value == was:
            return
        writes.append((partition, key, {"b": batch, "p": partition, "v": value, "was": was}))
        if value is None:
            deleted.append((partition, key, None))

    for name in sorted(view_records):
        if not name.startswith(QUEUE + "/"):  # the queue is derived from the open cases
            put(view_key(center, name), _copy(record_value(state.center.view, name)))
    for case_id in sorted(case_ids):
        # never copied: the fold replaces a case's record, it does not change one in place
        put(case_key(center, case_id), state.center.cases.get(case_id))
    writes.append((partition, center, {"epoch": state.epoch, "seq": state.seq,
                                       "applied": dict(state.applied), "batch": batch,
                                       "partition": partition}))
    return writes + deleted
