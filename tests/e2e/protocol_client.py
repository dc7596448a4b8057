"""A minimal console client, written from docs/PROTOCOL.md alone.

It imports nothing from the project (stdlib, websockets, httpx, orjson only): if it follows a
center correctly, the document is enough to write a client.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection


def _parent(view: dict[str, Any], path: list[str], create: bool) -> dict[str, Any] | None:
    node = view
    for key in path[:-1]:
        child = node.get(key)
        if child is None:
            if not create:
                return None
            child = node[key] = {}
        node = child
    return node


def apply_changes(view: dict[str, Any], changes: list[dict[str, Any]]) -> None:
    """PROTOCOL.md §3: set, del, push, in order."""
    for change in changes:
        op, path = change["op"], change["path"]
        if op == "set":
            parent = _parent(view, path, create=True)
            assert parent is not None
            parent[path[-1]] = change["value"]
        elif op == "del":
            parent = _parent(view, path, create=False)
            if parent is not None:
                parent.pop(path[-1], None)
        elif op == "push":
            parent = _parent(view, path, create=True)
            assert parent is not None
            items = parent.setdefault(path[-1], [])
            value = change["value"]
            at = next((i for i, item in enumerate(items) if item["n"] <= value["n"]), len(items))
            if at < len(items) and items[at]["n"] == value["n"]:
                continue
            items.insert(at, value)
            del items[change["max"]:]
        else:
            raise ValueError(f"unknown op {op!r}")


class ConsoleClient:
    """Follows one center: a snapshot, then deltas; resumes after a drop."""

    def __init__(self, base_url: str, center: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.center = center
        self.token = token
        self.view: dict[str, Any] | None = None
        self.epoch: str | None = None
        self.seq: int | None = None
        self.snapshots = 0
        self.deltas = 0
        self.ws: ClientConnection | None = None

    async def connect(self) -> None:
        """Open the websocket; `resume` when a view is held, else `hello` (§2, §4)."""
        url = self.base_url.replace("http", "ws", 1) + f"/ws/console?center={self.center}"
        self.ws = await websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {self.token}"}, max_size=None)
        if self.view is not None:
            await self._send({"type": "resume", "epoch": self.epoch, "seq": self.seq})
        else:
            await self._send({"type": "hello"})

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(orjson.dumps(message).decode())

    async def drop(self) -> None:
        """Lose the connection without a closing handshake, as a network failure would."""
        assert self.ws is not None
        self.ws.transport.abort()
        await self.ws.wait_closed()
        self.ws = None

    async def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        """Read one frame and apply it."""
        assert self.ws is not None
        frame = orjson.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if frame["type"] == "snapshot":
            self.view, self.epoch, self.seq = frame["view"], frame["epoch"], frame["seq"]
            self.snapshots += 1
        elif frame["type"] == "delta":
            if self.view is None or frame["epoch"] != self.epoch or frame["seq"] != self.seq + 1:
                await self._send({"type": "snapshot"})  # never apply out of order (§4)
            else:
                apply_changes(self.view, frame["changes"])
                self.seq = frame["seq"]
                self.deltas += 1
        elif frame["type"] == "error":
            raise RuntimeError(f"server error: {frame['detail']}")
        return frame

    async def http_view(self) -> tuple[str, int, dict[str, Any]]:
        """GET /api/centers/{id}/view with its epoch and seq (§8)."""
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            response = await client.get(f"/api/centers/{self.center}/view",
                                        headers={"Authorization": f"Bearer {self.token}"})
        response.raise_for_status()
        return (response.headers["x-linkage-epoch"], int(response.headers["x-linkage-seq"]),
                response.json())

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None
