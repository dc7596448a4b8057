"""Subscriptions: who is told of which kinds of events, for which centers, in which format.

From a file (LINKAGE_OUTBOUND_FILE, JSON, checked whole with `linkage outbound check`) or added
with `linkage outbound add` (kept in the outbound store). A subscription with no centers hears
of every center.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
import orjson
from msgspec import Meta, Struct

from infra.outbound.kinds import KINDS, TREE_HEAD, Notice

Name = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Format = Literal["json", "cap"]
MAX_SUBSCRIPTIONS = 100


class SubscriptionError(ValueError):
    """A subscription that cannot be used; the message names it and the problem."""


class Subscription(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    name: Name
    url: Annotated[str, Meta(min_length=1, max_length=2000)]
    format: Format = "json"
    events: Annotated[list[str], Meta(min_length=1, max_length=len(KINDS))]
    centers: Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]],
                       Meta(max_length=500)] = msgspec.field(default_factory=list)
    # HMAC-SHA256 key of the X-Linkage-Signature header (shared with the receiver)
    secret: Annotated[str, Meta(min_length=16, max_length=256)]

    def wants(self, notice: Notice) -> bool:
        return bool(notice.kinds & set(self.events)) and (
            not self.centers or any(c in self.centers for c in notice.centers))


class SubscriptionFile(Struct, forbid_unknown_fields=True):
    subscriptions: Annotated[list[Subscription], Meta(max_length=MAX_SUBSCRIPTIONS)]


def check(subscription: Subscription, known_centers: Any = None) -> Subscription:
    """A subscription whose URL, kinds and centers make sense; else SubscriptionError."""
    where = f"subscription {subscription.name!r}"
    parts = urlsplit(subscription.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriptionError(f"{where}: url must be an http(s) URL; got {subscription.url!r}")
    unknown = [k for k in subscription.events if k not in KINDS]
    if unknown:
        raise SubscriptionError(f"{where}: unknown event kind {unknown[0]!r}; expected "
                                f"{', '.join(KINDS)}")
    if TREE_HEAD in subscription.events:
        # Its deliveries are keyed and ordered by tree size, not by event: a kind of its own.
        if len(subscription.events) > 1:
            others = [k for k in subscription.events if k != TREE_HEAD]
            raise SubscriptionError(f"{where}: {TREE_HEAD} goes in a subscription of its own; "
                                    f"got also {others[0]!r}")
        if subscription.format != "json":
            raise SubscriptionError(f"{where}: {TREE_HEAD} is sent as JSON only (a signed tree "
                                    "head is no alert: CAP has no form for it); got format "
                                    f"{subscription.format!r}")
        if subscription.centers:
            raise SubscriptionError(f"{where}: {TREE_HEAD} covers the whole log; it takes no "
                                    "centers")
    if known_centers is not None:
        for center in subscription.centers:
            if center not in known_centers:
                raise SubscriptionError(f"{where}: center {center!r} is not a center of the "
                                        "jurisdiction tree")
    return subscription


def parse(data: Any, known_centers: Any = None) -> list[Subscription]:
    try:
        parsed = msgspec.convert(data, SubscriptionFile)
    except msgspec.ValidationError as exc:
        raise SubscriptionError(f"outbound subscriptions: {exc}") from None
    names = [s.name for s in parsed.subscriptions]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SubscriptionError(f"outbound subscriptions: name {twice[0]!r} is used twice")
    return [check(s, known_centers) for s in parsed.subscriptions]


def load(path: str | Path, known_centers: Any = None) -> list[Subscription]:
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise SubscriptionError(f"outbound subscriptions {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise SubscriptionError(f"outbound subscriptions {path} is not JSON: {exc}") from None
    return parse(data, known_centers)


def new_secret() -> str:
    return secrets.token_urlsafe(32)
