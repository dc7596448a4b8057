"""A center's state in the worker's table, and the pure step that folds one event into it.

The state remembers, per source partition of `linkage.events`, the last notification id
it applied. Within a partition notification ids only grow (the relay produces in
notification order, keyed by aggregate), so an id at or below that mark is a redelivery
and changes nothing. The worker reads the log from one partition (streams/app.py), so a
center's events arrive in log order: the alert fold depends on that order, incidents do not.
"""

from __future__ import annotations

from typing import Any, TypedDict

from projections.center_view import changes_for, new_view
from projections.envelope import Envelope
from projections.patch import Change, View, apply_changes


class CenterState(TypedDict):
    view: View
    seq: int
    epoch: str
    applied: dict[str, int]  # source partition (as text: JSON keys) -> last notification id


def new_state(center: str, epoch: str) -> CenterState:
    return {"view": new_view(center), "seq": 0, "epoch": epoch, "applied": {}}


def fold(state: CenterState, partition: int, event: Envelope) -> list[Change] | None:
    """Apply one event to the state in place; the delta's changes, or None for a redelivery.

    An event that changes nothing (`[]`) takes no seq, as in the embedded runner."""
    key = str(partition)
    if event.notification_id <= state["applied"].get(key, 0):
        return None
    changes = changes_for(state["view"], event)
    state["applied"][key] = event.notification_id
    if changes:
        apply_changes(state["view"], changes)
        state["seq"] += 1
    return changes


def fold_each(state: CenterState, items: list[tuple[int, Envelope]]) -> list[tuple[int, list[Change]]]:
    """Fold one batch's (source partition, event)s for a center in place; its deltas as (seq,
    changes), one per event that changes the view, redeliveries skipped.

    One seq per event, whatever the batching, is what makes a crash safe: the worker publishes
    before it writes its table, and a replay (batched otherwise) gives the same (epoch, seq)s,
    which the fan-out drops. Folding a run of alerts into one delta would break that."""
    deltas: list[tuple[int, list[Change]]] = []
    for partition, event in items:
        changes = fold(state, partition, event)
        if changes:
            deltas.append((state["seq"], changes))
    return deltas


def as_state(value: Any) -> CenterState | None:
    """A table value read back from the changelog (plain JSON) as a CenterState."""
    if not isinstance(value, dict):
        return None
    return {
        "view": value["view"],
        "seq": int(value["seq"]),
        "epoch": str(value["epoch"]),
        "applied": {str(k): int(v) for k, v in value["applied"].items()},
    }
