"""A center's state in the worker, and the pure step that folds one event into it.

The state remembers, per source partition of `linkage.events`, the last notification id
it applied. Within a partition notification ids only grow (the relay produces in
notification order, keyed by aggregate), so an id at or below that mark is a redelivery
and changes nothing. The worker reads the log from one partition (streams/app.py), so a
center's events arrive in log order: the alert fold (`apply_event`) depends on that order,
incidents do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from projections.center_view import QUEUE_SIZE, Center, apply_event, new_center
from projections.envelope import Envelope
from projections.patch import Change, View


@dataclass
class CenterState:
    center: Center  # the view and the open cases under the center
    epoch: str
    seq: int = 0
    applied: dict[str, int] = field(default_factory=dict)  # source partition (as text) -> id
    batch: int = 0  # the last batch of writes stored for it (streams/center_table.py)

    @property
    def view(self) -> View:
        return self.center.view


def new_state(center: str, epoch: str, queue_size: int = QUEUE_SIZE) -> CenterState:
    return CenterState(new_center(center, queue_size), epoch)


def fold(state: CenterState, partition: int, event: Envelope) -> list[Change] | None:
    """Apply one event to the state in place; the delta's changes, or None for a redelivery.

    An event that changes nothing (`[]`) takes no seq, as in the embedded runner."""
    key = str(partition)
    if event.notification_id <= state.applied.get(key, 0):
        return None
    changes = apply_event(state.center, event)
    state.applied[key] = event.notification_id
    if changes:
        state.seq += 1
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
            deltas.append((state.seq, changes))
    return deltas
