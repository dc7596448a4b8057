"""The change operations a delta carries, and how to apply them.

The same three operations are implemented in the console (static/patch.js):
applying a snapshot and then every delta's changes in order gives the view.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

View = dict[str, Any]


class Change(TypedDict, total=False):
    op: Literal["set", "del", "push"]
    path: list[str]
    value: Any
    max: int


def set_(path: list[str], value: Any) -> Change:
    return {"op": "set", "path": path, "value": value}


def del_(path: list[str]) -> Change:
    return {"op": "del", "path": path}


def push(path: list[str], value: dict[str, Any], limit: int) -> Change:
    """Insert into a list kept sorted by value['n'] descending, bounded to `limit` items."""
    return {"op": "push", "path": path, "value": value, "max": limit}


def _parent(view: View, path: list[str], create: bool) -> Any:
    if len(path) == 2:  # most changes: a key of one of the view's maps, which exists
        child = view.get(path[0])
        if child is not None:
            return child
    node: Any = view
    for key in path[:-1]:
        child = node.get(key)
        if child is None:
            if not create:
                return None
            child = {}
            node[key] = child
        node = child
    return node


def apply_changes(view: View, changes: list[Change]) -> View:
    """Apply changes in order to view, in place; returns the view."""
    for change in changes:
        path = change["path"]
        op = change["op"]
        if op == "set":
            _parent(view, path, True)[path[-1]] = change["value"]
        elif op == "del":
            parent = _parent(view, path, False)
            if parent is not None:
                parent.pop(path[-1], None)
        elif op == "push":
            parent = _parent(view, path, True)
            items: list[dict[str, Any]] = parent.setdefault(path[-1], [])
            item = change["value"]
            n = item["n"]
            index = 0
            while index < len(items) and items[index]["n"] > n:
                index += 1
            if index < len(items) and items[index]["n"] == n:
                continue
            items.insert(index, item)
            del items[change["max"] :]
        else:
            raise ValueError(f"unknown change op {op!r}; expected set, del or push")
    return view
