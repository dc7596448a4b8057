"""Verifying the sealed history from a read-only snapshot, optionally against heads kept elsewhere.

Recomputes the chain from the stored events (modified, deleted, inserted, reordered events), then
checks that the chain is whole: it starts at the first event (not restarted), the sealer's tracking
row sits on its last row (not rewound), every signed checkpoint is present, validly signed and on
the chain (not truncated). Heads given from outside the data dir (`--expect-head`) must each
still be on the chain: a head beyond its end is a truncation, a different hash a rewrite. Events
after the chain's end are reported as unsealed, not as an error: the sealer may not have reached
them yet, and only heads kept elsewhere can tell a lagging sealer from deleted seals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infra.security.seal_format import GENESIS, chain_hash, checkpoint_message, content_digest
from infra.security.seal_snapshot import SealSnapshot
from infra.security.witness import Head, key_id


@dataclass(frozen=True)
class Unsealed:
    count: int
    first: int
    last: int

    def __str__(self) -> str:
        if self.count == 1:
            return f"unsealed: 1 event (notification {self.first})"
        return f"unsealed: {self.count} events (notifications {self.first}..{self.last})"


@dataclass(frozen=True)
class Verified:
    ok: bool
    count: int  # chain rows checked
    checkpoint: int  # last valid checkpoint number (0: none yet)
    message: str
    notification: int | None = None  # the first bad notification
    # modified | deleted | inserted | reordered | chain | restarted | tracking | rewound |
    # truncated | checkpoint | key | head | rewritten
    kind: str | None = None
    unsealed: Unsealed | None = None  # events after the chain's end
    heads: int = 0  # heads from outside checked


class NoSealKey(LookupError):
    """A signature must be checked, and no seal key is configured."""


def _check(key: Ed25519PublicKey | None, signature: bytes, k: int, n: int, count: int,
           head: bytes) -> bool:
    if key is None:
        raise NoSealKey(f"signed checkpoint {k} cannot be checked without the seal key")
    try:
        key.verify(signature, checkpoint_message(k, n, count, head))
    except InvalidSignature:
        return False
    return True


def verify(snapshot: SealSnapshot, key: Ed25519PublicKey | None,
           heads: Sequence[tuple[int, Head]] = (), source: str = "--expect-head") -> Verified:
    """Check the snapshot's chain, checkpoints and tracking, then every head; name the first
    problem. `heads` are (line number, head) pairs from `source`."""
    checkpoints = snapshot.checkpoints()
    wanted = {c.notification_id for c in checkpoints} | {h.notification_id for _, h in heads}
    at: dict[int, tuple[bytes, int]] = {}  # wanted positions: (chain hash, events up to it)
    events = snapshot.events()
    pending = next(events, None)
    previous = GENESIS
    count = last = 0
    signed = 0  # the last checkpoint found valid

    def bad(kind: str, n: int | None, what: str) -> Verified:
        return Verified(False, count, signed, f"{kind}: {what}", n, kind)

    for n, content, stored_hash in snapshot.chain():
        if pending is not None and pending.id < n:
            if count == 0:
                return bad("restarted", pending.id, f"the seal chain starts at notification {n}, "
                           f"but notification {pending.id} before it is not sealed: the chain "
                           "was deleted and sealed again from a later point (or notification "
                           f"{pending.id} was inserted after sealing)")
            return bad("inserted", pending.id, f"notification {pending.id} is not in the sealed "
                       "chain (inserted after sealing)")
        if pending is None or pending.id > n:
            return bad("deleted", n, f"notification {n} was sealed but is missing from the "
                       "event store")
        event, pending = pending, next(events, None)
        if chain_hash(previous, event) != stored_hash:
            current = content_digest(event)
            if current != content:
                moved_from = snapshot.sealed_as(current)
                if moved_from is not None and moved_from != n:
                    return bad("reordered", n, f"notification {n} holds the event sealed as "
                               f"notification {moved_from} ({event.topic} "
                               f"v{event.originator_version})")
                return bad("modified", n, f"notification {n} differs from what was sealed "
                           f"({event.topic} v{event.originator_version} of "
                           f"{event.originator_id})")
            return bad("chain", n, f"notification {n} is intact but its seal-chain row does not "
                       "link to the previous one: a notification before it was removed together "
                       "with its chain row, or the chain rows were edited")
        previous = stored_hash
        count += 1
        last = n
        if n in wanted:
            at[n] = (stored_hash, count)
    end = f"the chain ends at notification {last} ({count} events)" if count else (
        "the chain is empty")

    for expected, cp in enumerate(checkpoints, 1):
        k, n = cp.k, cp.notification_id
        what = f"signed checkpoint {k} at notification {n} ({cp.count} events)"
        if k != expected:
            return bad("checkpoint", n, f"signed checkpoint {expected} is missing (the next one "
                       f"is {k}): checkpoints were deleted")
        if not _check(key, cp.signature, k, n, cp.count, cp.hash):
            return bad("checkpoint", n, f"{what} has a bad signature")
        if n > last:
            return bad("truncated", n, f"{end}, but {what} covers more: history after "
                       f"notification {last} was removed")
        if at.get(n) != (cp.hash, cp.count):
            return bad("checkpoint", n, f"the chain at notification {n} no longer matches "
                       f"signed checkpoint {k}; history between checkpoint {k - 1} and {k} was "
                       "rewritten")
        signed = k

    tracking = snapshot.tracking()
    if tracking is None and count:
        return bad("tracking", last, f"{end}, but the sealer's tracking row is missing: it was "
                   "deleted")
    if tracking is not None:
        position, tracked, head = tracking
        if position < last:
            return bad("rewound", position, f"the sealer's tracking was rewound to notification "
                       f"{position} ({tracked} events), but {end}")
        if position > last:
            return bad("truncated", position, f"the sealer's tracking says {tracked} events up "
                       f"to notification {position} were sealed, but {end}: chain rows after it "
                       "were deleted")
        if (tracked, head) != (count, previous):
            return bad("tracking", position, f"the sealer's tracking row at notification "
                       f"{position} ({tracked} events, head {head.hex()[:16]}…) does not match "
                       f"the chain ({count} events, head {previous.hex()[:16]}…)")

    for line, h in sorted(heads, key=lambda pair: (pair[1].notification_id, pair[0])):
        n = h.notification_id
        what = (f"the head of checkpoint {h.checkpoint} at notification {n} ({h.count} events; "
                f"{source} line {line})")
        if key is not None and h.key is not None and h.key != key_id(key):
            return bad("key", n, f"{what} was signed by key {h.key}, but the configured seal key "
                       f"is {key_id(key)}: the seal key was replaced, or the head is not this "
                       "store's")
        hash_ = bytes.fromhex(h.hash)
        if not _check(key, bytes.fromhex(h.signature), h.checkpoint, n, h.count, hash_):
            return bad("head", n, f"{what} is not validly signed by the configured seal key: it "
                       "is forged or corrupted")
        if n > last:
            return bad("truncated", n, f"{end}, but {what} was signed after it: history after "
                       f"notification {last} was removed")
        got = at.get(n)
        if got != (hash_, h.count):
            now = (f"hashes to {got[0].hex()[:16]}… after {got[1]} events" if got else
                   "has no sealed row")
            return bad("rewritten", n, f"the chain at notification {n} {now}, but {what} "
                       f"recorded {h.hash[:16]}…: history up to notification {n} was rewritten "
                       "and sealed again")

    unsealed_count, first, final = snapshot.events_after(last)
    unsealed = Unsealed(unsealed_count, first, final) if unsealed_count else None
    unsigned = count - (checkpoints[-1].count if checkpoints else 0)
    tail = f"; {unsigned} later events are chained but not yet signed" if unsigned else ""
    message = f"verified {count} events up to checkpoint {signed}{tail}"
    if heads:
        latest = max((h for _, h in heads), key=lambda h: h.notification_id)
        message += (f"; consistent with {len(heads)} signed heads from {source} (the latest: "
                    f"checkpoint {latest.checkpoint} at notification {latest.notification_id})")
    return Verified(True, count, signed, message, unsealed=unsealed, heads=len(heads))
