"""Feed keys revoked while their websockets are open.

Every process polls the key store (`infra.security.api_keys.poll_revoked`) and hands the set of
revoked key ids to `Revocations.update`; an open `/ws/feed` socket waits on its key's event and
closes with 1008 when it is set, and refuses any message of a key known to be revoked. The
ingest writer process checks the key again per batch: `FEED_KEY` carries it there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

# The API key id a request or feed socket authenticated with (set by `Auth.authenticate_feed`).
# A context variable because the ingest path reaches the writer through the domain's
# `AlertService.ingest`, which knows feeds and actors but not credentials; threads started with
# `run_in_threadpool` or `asyncio.to_thread` inherit it.
FEED_KEY: ContextVar[str | None] = ContextVar("linkage_feed_key", default=None)


class Revocations:
    """The revoked key ids this process knows of, and the open sockets waiting on their keys.

    Used from the event loop only (the poll hands its result over there)."""

    def __init__(self) -> None:
        self.revoked: frozenset[str] = frozenset()
        self._waiting: dict[str, set[asyncio.Event]] = {}

    def is_revoked(self, key_id: str | None) -> bool:
        return key_id is not None and key_id in self.revoked

    def update(self, revoked: frozenset[str]) -> None:
        """The ids revoked now; wakes the sockets of every key newly among them."""
        fresh = revoked - self.revoked
        self.revoked = revoked
        for key_id in fresh:
            for event in self._waiting.get(key_id, ()):
                event.set()

    @contextlib.contextmanager
    def watch(self, key_id: str) -> Iterator[asyncio.Event]:
        """An event set once `key_id` is revoked (at once if it already is), while the block runs."""
        event = asyncio.Event()
        if key_id in self.revoked:
            event.set()
        waiting = self._waiting.setdefault(key_id, set())
        waiting.add(event)
        try:
            yield event
        finally:
            waiting.discard(event)
            if not waiting:
                self._waiting.pop(key_id, None)
