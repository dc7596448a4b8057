"""Coalescing deltas: many events' changes to one view, shortened without changing the result.

A later ``set`` at a path overwrites whatever earlier ops did at that path or below it,
so those earlier ops can go. Applying ``compact(changes)`` gives the same view as
applying ``changes``; a storm of alerts then costs a bounded number of ops per batch.
"""

from __future__ import annotations

from projections.patch import Change


def compact(changes: list[Change]) -> list[Change]:
    """The same changes without ops a later set makes pointless; order otherwise kept."""
    kept: list[Change | None] = []
    # path prefix -> indexes in `kept` of ops at or below it
    under: dict[tuple[str, ...], list[int]] = {}
    for change in changes:
        path = tuple(change["path"])
        if change["op"] == "set":
            for index in under.pop(path, ()):
                kept[index] = None
        index = len(kept)
        kept.append(change)
        for depth in range(1, len(path) + 1):
            under.setdefault(path[:depth], []).append(index)
    return [change for change in kept if change is not None]
