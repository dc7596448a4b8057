"""Coalescing deltas: many events' changes to one view, shortened without changing the result.

A later ``set`` at a path overwrites whatever earlier ops did at that path or below it,
so those earlier ops can go. Applying ``compact(changes)`` gives the same view as
applying ``changes``; a storm of alerts then costs a bounded number of ops per batch.
"""

from __future__ import annotations

from projections.patch import Change


def compact(changes: list[Change]) -> list[Change]:
    """The same changes without ops a later set makes pointless; order otherwise kept."""
    exact: set[tuple[str, ...]] = set()  # paths a later set overwrites
    containers: set[tuple[str, ...]] = set()  # ... of those, the ones set to an object or list
    kept: list[Change] = []
    for change in reversed(changes):
        key = tuple(change["path"])
        if key in exact:
            continue
        if containers and any(key[:depth] in containers for depth in range(1, len(key))):
            continue
        if change["op"] == "set":
            exact.add(key)
            if isinstance(change["value"], (dict, list)):
                containers.add(key)
        kept.append(change)
    kept.reverse()
    return kept
