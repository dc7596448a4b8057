"""A center's urgency queue: the N most urgent of its open cases, and the index it refills from.

The view holds only the queue (`view["queue"]`, id -> item, at most N items). Every open case
under the center lives in `OpenCases`, ordered by (urgency, id), outside the view: one record
per case wherever it is stored. The queue is always the first N of that order, a function of
the set of open cases alone, so folding events in any order, or replaying them, gives the same
queue. One event moves at most one case in and one case out: O(log n) per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from sortedcontainers import SortedList

from projections.cases import Case, is_open
from projections.patch import Change, View, del_, set_

QUEUE_SIZE = 200


def queue_item(case: Case) -> Case:
    """What the queue shows of a case: the record without its list of centers."""
    item = dict(case)  # a copy in C, then one key out: the same keys in the same order
    item.pop("centers", None)
    return item


class OpenCases:
    """The open cases under one center, by id and in urgency order."""

    def __init__(self, cases: Iterable[Case] = ()) -> None:
        self._by_id: dict[str, Case] = {case["id"]: case for case in cases}
        self._order: SortedList[tuple[str, str]] = SortedList((c["urgency"], i) for i, c in self._by_id.items())

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Case]:
        """The cases, most urgent first."""
        return (self._by_id[i] for _, i in self._order)

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._by_id

    def get(self, case_id: str) -> Case | None:
        return self._by_id.get(case_id)

    def put(self, case: Case) -> None:
        self.remove(case["id"])
        self._by_id[case["id"]] = case
        self._order.add((case["urgency"], case["id"]))

    def remove(self, case_id: str) -> Case | None:
        case = self._by_id.pop(case_id, None)
        if case is not None:
            self._order.remove((case["urgency"], case_id))
        return case

    def rank(self, case_id: str) -> int:
        """How many cases are more urgent than this one (which must be here)."""
        return int(self._order.index((self._by_id[case_id]["urgency"], case_id)))

    def at(self, rank: int) -> Case:
        """The case with `rank` cases more urgent than it."""
        return self._by_id[self._order[rank][1]]

    def top(self, n: int) -> list[Case]:
        return [self._by_id[i] for _, i in self._order.islice(0, n)]


def queue_view(cases: OpenCases, size: int) -> dict[str, Case]:
    """The queue a view holds for these open cases."""
    return {case["id"]: queue_item(case) for case in cases.top(size)}


def queue_changes(view: View, cases: OpenCases, old: Case | None, new: Case | None,
                  size: int, item: Callable[[Case], Case] | None = None) -> list[Change]:
    """Put a case's new record into `cases` (in place) and say what that changes in the queue.

    Before and after, the queue is the first `size` cases of `cases`: when the case enters,
    the last one is pushed out; when it leaves, the next most urgent case comes in. `item`
    builds what the queue shows of a case (`queue_item`, or one that shares it between centers)."""
    item = item or queue_item
    if new is old:
        return []
    case_id = (new or old or {})["id"]
    if old is not None:
        cases.remove(case_id)
    if new is not None and is_open(new):
        cases.put(new)
    queue = view["queue"]
    was_in = case_id in queue
    is_in = case_id in cases and cases.rank(case_id) < size
    changes: list[Change] = []
    if is_in:
        assert new is not None
        changes.append(set_(["queue", case_id], item(new)))
        if not was_in and len(cases) > size:
            changes.append(del_(["queue", cases.at(size)["id"]]))
    elif was_in:
        changes.append(del_(["queue", case_id]))
        if len(cases) >= size:
            entrant = cases.at(size - 1)
            changes.append(set_(["queue", entrant["id"]], item(entrant)))
    return changes
