"""The deliverer: follows the notification log, turns the events subscriptions want into
deliveries (infra/outbound/store.py), and posts them, per subscription in event order, with
retries and backoff, until they are delivered or dead letters.

It runs off the request path: in the server's event loop as a background task (embedded), or
as the holder of the "outbound" lease, one process at a time (distributed: infra/bootstrap.py).
A receiver that is down costs its own subscription's task a timeout per attempt, never a
command. At-least-once: a delivery is marked delivered only after a 2xx; the receiver drops
repeats by the `Idempotency-Key` header (subscription:notification id), the same every attempt.

Signed tree heads (`tree_head_signed`) come the same way from a second scan, of the stored
heads (`linkage_seal_heads`, the sealer's record: not a callback a crash could lose) after its
own position; their deliveries are keyed by tree size (subscription:tree size) and their body
is the head's witness line (docs/AUDIT-FORMAT.md), without the newline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
import orjson

from infra.outbound import cap
from infra.outbound.kinds import KIND_EVENTS, TREE_HEAD, Notice, StormWatch, classify
from infra.outbound.store import Delivery, OutboundStore
from infra.outbound.subscriptions import Subscription
from infra.security.tree_head import TreeHead, publish
from projections.envelope import Envelope

log = logging.getLogger(__name__)

# (after position, limit, event types "<Aggregate>.<Event>") -> the envelopes of those types after
# the position, in order, up to a limit; a reader may end a batch with an envelope of another
# type (a skip marker) to move the position past events it did not return.
ReadNotifications = Callable[[int, int, Collection[str]], list[Envelope]]
# (subscription, outcome: delivered | retry | dead) after every attempt
OnResult = Callable[[str, str], None]
SCAN = "outbound"
HEADS_SCAN = "tree-heads"
SIGNATURE = "X-Linkage-Signature"
JSON_TYPE = "application/json"
CAP_TYPE = "application/cap+xml"


class StoredHeads(Protocol):
    """The signed tree heads the sealer stored (infra/outbound/wiring.py reads them)."""

    def latest(self) -> int:
        """The tree size of the latest signed head (0: none yet)."""
        ...

    def after(self, tree_size: int, limit: int) -> list[TreeHead]:
        """At most `limit` heads of more than `tree_size` leaves, smallest first."""
        ...

    def close(self) -> None:
        """Let go of what the reads hold (a connection), when the deliverer stops."""
        ...


@dataclass(frozen=True)
class Tuning:
    poll: float = 0.5  # seconds between scans of the log and between looks at an idle queue
    timeout: float = 5.0  # seconds one POST may take
    max_attempts: int = 12  # then the delivery is a dead letter
    backoff: float = 1.0  # first retry after this many seconds, doubling...
    max_backoff: float = 300.0  # ...up to this
    batch: int = 500  # notifications read per scan
    send_batch: int = 100  # deliveries read (and marked delivered) at a time
    keep: float = 7 * 86400.0  # seconds delivered rows are kept (for `outbound status`)


def signature(secret: str, body: bytes) -> str:
    """The X-Linkage-Signature header: `sha256=<hex HMAC-SHA256 of the body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def json_body(notice: Notice, subscription: str) -> bytes:
    return orjson.dumps({
        "id": f"{subscription}:{notice.notification_id}",
        "kinds": sorted(notice.kinds),
        "event": notice.event,
        "notification_id": notice.notification_id,
        "subject": notice.subject,
        "incident": notice.incident,
        "at": notice.at,
        "centers": list(notice.centers),
        **notice.facts,
    })


class Deliverer:
    def __init__(self, store: OutboundStore, read: ReadNotifications,
                 subscriptions: Callable[[], Sequence[Subscription]], *, sender: str,
                 head: Callable[[], int], tuning: Tuning = Tuning(),
                 on_result: OnResult | None = None, heads: StoredHeads | None = None) -> None:
        self.store = store
        self.heads = heads
        self.read = read
        self.subscriptions = subscriptions
        self.sender = sender
        self.head = head  # the store's last notification id: where a first scan starts
        self.tuning = tuning
        self.on_result = on_result or (lambda subscription, outcome: None)
        self._senders: dict[str, tuple[Subscription, asyncio.Task[None]]] = {}

    # -- scanning the log ---------------------------------------------------------------------------

    def _body(self, notice: Notice, subscription: Subscription) -> tuple[str, bytes]:
        if subscription.format == "cap":
            return CAP_TYPE, cap.render(notice, self.sender)
        return JSON_TYPE, json_body(notice, subscription.name)

    def scan(self, subscriptions: Sequence[Subscription]) -> int:
        """One batch of the log after the position: the deliveries it gives, stored with the
        new position. A first scan starts at the store's head (history is not sent).

        Only the event types the subscriptions' kinds come from are read: with nobody
        subscribed to storms, a burst of raised alerts is never read or decoded here; with
        nobody subscribed at all, the position follows the head without reading."""
        position = self.store.position(SCAN)
        if position is None:
            self.store.record_scan(SCAN, self.head(), ())
            return 0
        types = {t for s in subscriptions for kind in s.events for t in KIND_EVENTS.get(kind, ())}
        if not types:
            head = self.head()
            if head > position:
                self.store.record_scan(SCAN, head, ())
            return 0
        events = self.read(position, self.tuning.batch, types)
        if not events:
            return 0
        storms = StormWatch(self.store.windows(SCAN))
        rows = []
        for event in events:
            notice = classify(event) or storms.observe(event)
            if notice is None:
                continue
            for subscription in subscriptions:
                if subscription.wants(notice):
                    try:
                        content_type, body = self._body(notice, subscription)
                    except cap.InvalidCap as exc:  # a defect: logged, not sent, not blocking
                        log.error("outbound %s: event %d gives invalid CAP (%s); skipped",
                                  subscription.name, notice.notification_id, exc)
                        continue
                    rows.append((subscription.name, notice.notification_id, notice.subject,
                                 content_type, body))
        self.store.record_scan(SCAN, events[-1].notification_id, rows, storms.state())
        return len(events)

    def scan_heads(self, subscriptions: Sequence[Subscription]) -> int:
        """One batch of the signed tree heads after the heads' position, as deliveries to the
        subscriptions of `tree_head_signed` (none: nothing is read). A first scan starts at the
        latest head."""
        wanting = [s for s in subscriptions if TREE_HEAD in s.events]
        if self.heads is None or not wanting:
            return 0
        position = self.store.position(HEADS_SCAN)
        if position is None:
            self.store.record_scan(HEADS_SCAN, self.heads.latest(), ())
            return 0
        heads = self.heads.after(position, self.tuning.batch)
        if not heads:
            return 0
        rows = [(subscription.name, head.tree_size, f"tree-head:{head.tree_size}", JSON_TYPE,
                 body) for head, body in zip(heads, publish(heads), strict=True)
                for subscription in wanting]
        self.store.record_scan(HEADS_SCAN, heads[-1].tree_size, rows)
        return len(heads)

    # -- sending ------------------------------------------------------------------------------------

    def _retry_at(self, attempts: int) -> float | None:
        if attempts >= self.tuning.max_attempts:
            return None
        delay = min(self.tuning.max_backoff, self.tuning.backoff * 2 ** (attempts - 1))
        return float(time.time() + delay * random.uniform(0.8, 1.0))  # spread retries a little

    async def post(self, client: httpx.AsyncClient, subscription: Subscription,
                   delivery: Delivery) -> str | None:
        """One attempt: None when the receiver took it (2xx), else what went wrong."""
        headers = {"Content-Type": delivery.content_type, "Idempotency-Key": delivery.key,
                   SIGNATURE: signature(subscription.secret, delivery.body),
                   "User-Agent": "linkage-outbound"}
        try:
            response = await client.post(subscription.url, content=delivery.body,
                                         headers=headers, timeout=self.tuning.timeout)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"

    async def send_loop(self, client: httpx.AsyncClient, subscription: Subscription) -> None:
        """A subscription's deliveries, oldest first; the next waits for the one before. They
        are read a batch at a time and marked delivered a batch at a time (a crash in between
        sends some again, with the same idempotency keys: at-least-once)."""
        while True:
            batch = await asyncio.to_thread(self.store.next_pending, subscription.name,
                                            self.tuning.send_batch)
            if not batch:
                await asyncio.sleep(self.tuning.poll)
                continue
            done: list[Delivery] = []
            try:
                for delivery in batch:
                    wait = delivery.next_at - time.time()
                    if wait > 0:
                        await asyncio.sleep(min(wait, self.tuning.poll))
                        break  # read the queue again: it may have changed meanwhile
                    error = await self.post(client, subscription, delivery)
                    if error is None:
                        done.append(delivery)
                        self.on_result(subscription.name, "delivered")
                        continue
                    await self._failed(subscription, delivery, error)
                    break  # in order: nothing after it goes before it
            finally:
                if done:
                    await asyncio.to_thread(self.store.delivered, done)

    async def _failed(self, subscription: Subscription, delivery: Delivery, error: str) -> None:
        retry_at = self._retry_at(delivery.attempts + 1)
        await asyncio.to_thread(self.store.failed, delivery, error, retry_at)
        self.on_result(subscription.name, "retry" if retry_at is not None else "dead")
        if retry_at is None:
            log.error("outbound %s: delivery %s is a dead letter after %d attempts (%s)",
                      subscription.name, delivery.key, delivery.attempts + 1, error)
        elif delivery.attempts == 0:  # the first failure of a delivery; then status and metrics
            log.warning("outbound %s: delivery %s failed (%s); retrying with backoff",
                        subscription.name, delivery.key, error)

    def _keep_senders(self, client: httpx.AsyncClient,
                      subscriptions: Sequence[Subscription]) -> None:
        """One send loop per current subscription; a changed or removed one is restarted or
        stopped."""
        wanted = {s.name: s for s in subscriptions}
        for name, (subscription, task) in list(self._senders.items()):
            if wanted.get(name) != subscription or task.done():
                task.cancel()
                del self._senders[name]
        for name, subscription in wanted.items():
            if name not in self._senders:
                self._senders[name] = (subscription, asyncio.create_task(
                    self.send_loop(client, subscription), name=f"outbound:{name}"))

    async def run(self) -> None:
        last_prune = 0.0
        async with httpx.AsyncClient() as client:
            try:
                while True:
                    try:
                        subscriptions = await asyncio.to_thread(self.subscriptions)
                        self._keep_senders(client, subscriptions)
                        for scan in (self.scan, self.scan_heads):
                            while await asyncio.to_thread(scan, subscriptions) >= \
                                    self.tuning.batch:
                                pass  # catching up: the next batch at once
                        if time.time() - last_prune > 60:
                            last_prune = time.time()
                            await asyncio.to_thread(self.store.prune,
                                                    last_prune - self.tuning.keep)
                    except Exception:  # the store briefly unreachable: log, retry next poll
                        log.exception("outbound scan failed; retrying")
                    await asyncio.sleep(self.tuning.poll)
            finally:
                if self.heads is not None:
                    self.heads.close()
                for _subscription, task in self._senders.values():
                    task.cancel()
                for _subscription, task in self._senders.values():
                    with contextlib.suppress(BaseException):
                        await task
                self._senders.clear()
