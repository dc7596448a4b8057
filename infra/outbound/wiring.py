"""The deliverer of one process, from settings: its store, its subscriptions (the file's and
the CLI's), where it reads the log, what it reports to the metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from infra.outbound.deliverer import Deliverer, ReadNotifications, Tuning
from infra.outbound.store import PENDING, OutboundStore
from infra.outbound.subscriptions import Subscription, load
from infra.security.merkle_store import TreeReader
from infra.security.seal_snapshot import SealSnapshot
from infra.security.tree_head import TreeHead
from infra.settings import Settings
from infra.store.sqldb import Database

log = logging.getLogger(__name__)


def outbound_store(settings: Settings, *, create: bool = True) -> OutboundStore:
    return OutboundStore(Database.for_settings(settings, settings.data_dir / "outbound.db"),
                         create=create)


def tuning(settings: Settings) -> Tuning:
    return Tuning(poll=settings.outbound_poll, timeout=settings.outbound_timeout,
                  max_attempts=settings.outbound_max_attempts, backoff=settings.outbound_backoff,
                  max_backoff=settings.outbound_max_backoff)


def file_subscriptions(settings: Settings, centers: Collection[str]) -> list[Subscription]:
    """The subscriptions of LINKAGE_OUTBOUND_FILE, checked (SubscriptionError names a problem)."""
    return load(settings.outbound_file, centers) if settings.outbound_file else []


class SealedHeads:
    """The signed tree heads stored with the event store, each read in a read-only snapshot
    (no lock a command or the sealer would wait for)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def latest(self) -> int:
        with SealSnapshot.for_settings(self.settings) as snapshot:
            head = TreeReader(snapshot.query).head()
        return head.tree_size if head is not None else 0

    def after(self, tree_size: int, limit: int) -> list[TreeHead]:
        with SealSnapshot.for_settings(self.settings) as snapshot:
            return TreeReader(snapshot.query).heads(tree_size + 1, limit=limit)


def build_deliverer(settings: Settings, centers: Collection[str], read: ReadNotifications,
                    head: Callable[[], int], metrics: Any) -> Deliverer:
    from_file = file_subscriptions(settings, centers)
    store = outbound_store(settings)
    named = {s.name for s in from_file}

    def subscriptions() -> list[Subscription]:
        added = [s for s in store.subscriptions() if s.name not in named]  # the file's win
        return [*from_file, *added]

    def on_result(subscription: str, outcome: str) -> None:
        metrics.outbound.labels(subscription, outcome).inc()

    def pending() -> float:
        with store.db.tx() as tx:
            rows = tx.execute("SELECT COUNT(*) FROM linkage_outbound_deliveries WHERE status = ?",
                              (PENDING,))
        return float(rows[0][0])

    metrics.gauge("linkage_outbound_pending", "Outbound deliveries waiting to be delivered",
                  pending)
    return Deliverer(store, read, subscriptions, sender=settings.outbound_sender, head=head,
                     tuning=tuning(settings), on_result=on_result, heads=SealedHeads(settings))
