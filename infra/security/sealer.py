"""The sealer: a hash chain over the notification log, with Ed25519-signed checkpoints.

hash_n = SHA-256(hash_{n-1} || canonical(event n)), hash_0 = 32 zero bytes, where
canonical(event n) is, in this fixed encoding (integers big-endian):

    b"LKSEAL1" | notification id (8) | originator id (16, UUID bytes) |
    originator version (8) | len(topic) (4) | topic (UTF-8) | len(state) (8) | state

Each chain row also keeps `content` = SHA-256 of the same encoding without the
notification id, so a verifier can tell an event that moved (reordered) from one
that changed. The chain rows and the sealer's tracking position are written in one
transaction. Every `checkpoint_every` events the head is signed:
signature over b"linkage-checkpoint|<k>|<notification id>|<count>|<hash hex>".
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.security.secrets_file import read_or_create
from infra.settings import Settings
from infra.store.sqldb import Database, Tx
from infra.store.sqlite_recorder import LinkageSQLiteRecorder

log = logging.getLogger(__name__)

GENESIS = bytes(32)
MAGIC = b"LKSEAL1"
TRACKING_NAME = "sealer"


@dataclass(slots=True)
class Stored:
    """A notification as the event store holds it (read-only; not frozen, as a frozen dataclass
    builds itself through object.__setattr__, a measurable cost per sealed event)."""

    id: int
    originator_id: Any
    originator_version: int
    topic: str
    state: bytes


# (start, limit) -> notifications with id >= start, in order
ReadStored = Callable[[int, int], Sequence[Stored]]


def _body(originator_id: Any, version: int, topic: str, state: bytes) -> bytes:
    t = topic.encode()
    if type(state) is not bytes:
        state = bytes(state)  # a memoryview from PostgreSQL
    kind = type(originator_id)
    if kind is UUID:
        raw = originator_id.bytes
    elif kind is str and len(originator_id) == 36:  # canonical text, as the lean reader gives
        raw = bytes.fromhex(originator_id.replace("-", ""))
    else:
        raw = UUID(str(originator_id)).bytes
    return b"".join([
        raw, version.to_bytes(8, "big"),
        len(t).to_bytes(4, "big"), t, len(state).to_bytes(8, "big"), state,
    ])


def canonical(event: Stored) -> bytes:
    body = _body(event.originator_id, event.originator_version, event.topic, event.state)
    return MAGIC + event.id.to_bytes(8, "big") + body


def content_digest(event: Stored) -> bytes:
    body = _body(event.originator_id, event.originator_version, event.topic, event.state)
    return hashlib.sha256(MAGIC + body).digest()


def chain_hash(previous: bytes, event: Stored) -> bytes:
    return hashlib.sha256(previous + canonical(event)).digest()


def digests(previous: bytes, event: Stored) -> tuple[bytes, bytes]:
    """(content_digest(event), chain_hash(previous, event)), encoding the event once."""
    body = _body(event.originator_id, event.originator_version, event.topic, event.state)
    content = hashlib.sha256(MAGIC)
    content.update(body)
    chained = hashlib.sha256(previous)
    chained.update(MAGIC)
    chained.update(event.id.to_bytes(8, "big"))
    chained.update(body)
    return content.digest(), chained.digest()


def checkpoint_message(k: int, notification_id: int, count: int, head: bytes) -> bytes:
    return f"linkage-checkpoint|{k}|{notification_id}|{count}|{head.hex()}".encode()


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    path = Path(settings.seal_key_path) if settings.seal_key_path else (
        settings.data_dir / "seal_ed25519.pem")

    def make() -> bytes:
        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())

    key = serialization.load_pem_private_key(read_or_create(path, make), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} must hold an Ed25519 private key")
    return key


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class Verified:
    ok: bool
    count: int  # chain rows checked
    checkpoint: int  # last valid checkpoint number (0: none yet)
    message: str
    notification: int | None = None  # the first bad notification
    kind: str | None = None  # modified | deleted | inserted | reordered | chain | checkpoint


class Sealer:
    def __init__(self, read: ReadStored, db: Database, key: Ed25519PrivateKey, *,
                 checkpoint_every: int = 100, batch_size: int = 500,
                 read_table: ReadStored | None = None) -> None:
        self.read = read  # for sealing: may serve what this process just committed from memory
        # for verifying and exporting: always the table, as it is now
        self.read_table = read_table or read
        self.db = db
        self.key = key
        self.public_key = key.public_key()
        self.public_pem = public_pem(self.public_key)
        self.checkpoint_every = max(1, checkpoint_every)
        self.batch_size = batch_size
        with db.tx() as tx:
            blob = db.blob
            tx.execute("CREATE TABLE IF NOT EXISTS linkage_seal_chain ("
                       f"notification_id BIGINT PRIMARY KEY, content {blob} NOT NULL, "
                       f"hash {blob} NOT NULL)")
            tx.execute("CREATE TABLE IF NOT EXISTS linkage_seal_checkpoints ("
                       "k BIGINT PRIMARY KEY, notification_id BIGINT NOT NULL, "
                       f"count BIGINT NOT NULL, hash {blob} NOT NULL, signature {blob} NOT NULL, "
                       "public_key TEXT NOT NULL, created_at TEXT NOT NULL)")
            tx.execute("CREATE TABLE IF NOT EXISTS linkage_seal_tracking ("
                       "name TEXT PRIMARY KEY, notification_id BIGINT NOT NULL, "
                       f"count BIGINT NOT NULL, head {blob} NOT NULL)")

    # -- sealing -------------------------------------------------------------

    def _head(self, tx: Tx, lock: bool = False) -> tuple[int, int, bytes]:
        # On PostgreSQL a second sealer (serve and `audit verify` at once) waits here.
        suffix = " FOR UPDATE" if lock and self.db.kind == "postgres" else ""
        rows = tx.execute("SELECT notification_id, count, head FROM linkage_seal_tracking "
                          "WHERE name = ?" + suffix, (TRACKING_NAME,))
        if not rows:
            return 0, 0, GENESIS
        position, count, head = rows[0]
        return int(position), int(count), bytes(head)

    def position(self) -> int:
        with self.db.tx() as tx:
            return self._head(tx)[0]

    def seal_batch(self) -> int:
        """Seal the next notifications after the tracked position; how many were sealed."""
        with self.db.tx() as tx:
            position = self._head(tx)[0]
        # Read outside the write transaction: on SQLite it would hold the store's write lock.
        events = self.read(position + 1, self.batch_size)
        if not events:
            return 0
        with self.db.tx() as tx:
            start, count, head = self._head(tx, lock=True)
            if start != position:
                return 0  # another sealer moved on meanwhile; read again
            last_k = tx.execute("SELECT MAX(k), MAX(count) FROM linkage_seal_checkpoints")[0]
            k, signed_count = int(last_k[0] or 0), int(last_k[1] or 0)
            rows = []
            for event in events:
                content, head = digests(head, event)
                count += 1
                rows.append((event.id, content, head))
                if count - signed_count >= self.checkpoint_every:
                    k += 1
                    self._sign(tx, k, event.id, count, head)
                    signed_count = count
            tx.executemany("INSERT INTO linkage_seal_chain (notification_id, content, hash) "
                           "VALUES (?, ?, ?)", rows)
            position = events[-1].id
            if tx.execute("SELECT 1 FROM linkage_seal_tracking WHERE name = ?", (TRACKING_NAME,)):
                tx.execute("UPDATE linkage_seal_tracking SET notification_id = ?, count = ?, "
                           "head = ? WHERE name = ?", (position, count, head, TRACKING_NAME))
            else:
                tx.execute("INSERT INTO linkage_seal_tracking VALUES (?, ?, ?, ?)",
                           (TRACKING_NAME, position, count, head))
            return len(events)

    def _sign(self, tx: Tx, k: int, notification_id: int, count: int, head: bytes) -> None:
        signature = self.key.sign(checkpoint_message(k, notification_id, count, head))
        tx.execute("INSERT INTO linkage_seal_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (k, notification_id, count, head, signature, self.public_pem,
                    datetime.now(UTC).isoformat()))

    def catch_up(self) -> int:
        total = 0
        while done := self.seal_batch():
            total += done
        return total

    def checkpoint_now(self) -> int | None:
        """Sign the chain head if events were sealed since the last checkpoint; its number."""
        with self.db.tx() as tx:
            position, count, head = self._head(tx, lock=True)
            last_k, signed = tx.execute("SELECT MAX(k), MAX(count) FROM linkage_seal_checkpoints")[0]
            if count == 0 or count == int(signed or 0):
                return None
            k = int(last_k or 0) + 1
            self._sign(tx, k, position, count, head)
            return k

    async def run(self, interval: float = 1.0, stopped: Callable[[], bool] = lambda: False,
                  checkpoint_seconds: float = 300.0) -> None:
        """Follow the log until cancelled (a background task of `linkage serve`); sign the head
        at least every `checkpoint_seconds` while events keep coming."""
        import asyncio
        import time

        signed_at = time.monotonic()
        while not stopped():
            try:
                await asyncio.to_thread(self.catch_up)
                if time.monotonic() - signed_at >= checkpoint_seconds:
                    await asyncio.to_thread(self.checkpoint_now)
                    signed_at = time.monotonic()
            except Exception:  # keep following; the position only moves with the chain rows
                log.exception("sealing failed; retrying")
            await asyncio.sleep(interval)

    # -- reading -------------------------------------------------------------

    def chain(self, start: int = 1, stop: int | None = None) -> list[tuple[int, bytes, bytes]]:
        with self.db.tx() as tx:
            rows = tx.execute("SELECT notification_id, content, hash FROM linkage_seal_chain "
                              "WHERE notification_id >= ? AND notification_id <= ? "
                              "ORDER BY notification_id",
                              (start, stop if stop is not None else 2**62))
        return [(int(n), bytes(c), bytes(h)) for n, c, h in rows]

    def checkpoints(self) -> list[tuple[int, int, int, bytes, bytes]]:
        with self.db.tx() as tx:
            rows = tx.execute("SELECT k, notification_id, count, hash, signature "
                              "FROM linkage_seal_checkpoints ORDER BY k")
        return [(int(k), int(n), int(c), bytes(h), bytes(s)) for k, n, c, h, s in rows]

    def events(self, stop: int) -> Iterator[Stored]:
        """Every stored notification with id <= stop, in order, as the table holds it now."""
        start = 1
        while True:
            batch = self.read_table(start, self.batch_size)
            if not batch:  # not a short batch: a reader may return fewer than it could
                return
            for event in batch:
                if event.id > stop:
                    return
                yield event
            start = batch[-1].id + 1

    # -- verifying -----------------------------------------------------------

    def chain_rows(self, batch: int = 5000) -> Iterator[tuple[int, bytes, bytes]]:
        """Every chain row in order, read in batches (the chain can be long)."""
        after = 0
        while True:
            with self.db.tx() as tx:
                rows = tx.execute("SELECT notification_id, content, hash FROM linkage_seal_chain "
                                  "WHERE notification_id > ? ORDER BY notification_id LIMIT ?",
                                  (after, batch))
            yield from ((int(n), bytes(c), bytes(h)) for n, c, h in rows)
            if len(rows) < batch:
                return
            after = int(rows[-1][0])

    def sealed_as(self, content: bytes) -> int | None:
        """The notification id an event with this content digest was sealed as."""
        with self.db.tx() as tx:
            rows = tx.execute("SELECT notification_id FROM linkage_seal_chain WHERE content = ?",
                              (content,))
        return int(rows[0][0]) if rows else None

    def verify(self) -> Verified:
        """Recompute the chain from the events; name the first bad notification.

        Streams the chain rows and the events side by side, so memory stays flat."""
        last = self.position()
        checkpoints = self.checkpoints()
        wanted = {n for _, n, _, _, _ in checkpoints}
        heads: dict[int, tuple[bytes, int]] = {}  # at checkpoint positions: (hash, count)
        events = self.events(last)
        pending = next(events, None)
        previous = GENESIS
        count = 0

        def bad(kind: str, n: int, what: str) -> Verified:
            return Verified(False, count, 0, f"{kind}: notification {n} {what}", n, kind)

        for n, content, stored_hash in self.chain_rows():
            if n > last:
                break  # sealed after we started; the next verify covers it
            if pending is not None and pending.id < n:
                return bad("inserted", pending.id,
                           "is not in the sealed chain (inserted after sealing)")
            if pending is None or pending.id > n:
                return bad("deleted", n, "was sealed but is missing from the event store")
            event, pending = pending, next(events, None)
            if chain_hash(previous, event) != stored_hash:
                current = content_digest(event)
                if current != content:
                    moved_from = self.sealed_as(current)
                    if moved_from is not None and moved_from != n:
                        return bad("reordered", n, f"holds the event sealed as notification "
                                   f"{moved_from} ({event.topic} v{event.originator_version})")
                    return bad("modified", n, f"differs from what was sealed "
                               f"({event.topic} v{event.originator_version} of "
                               f"{event.originator_id})")
                return bad("chain", n, "is intact but its seal-chain row does not link to the "
                           "previous one: a notification before it was removed together with "
                           "its chain row, or the chain rows were edited")
            previous = stored_hash
            count += 1
            if n in wanted:
                heads[n] = (stored_hash, count)
        if pending is not None:
            return bad("inserted", pending.id, "is not in the sealed chain")

        checkpoint = signed = 0
        for k, n, signed_count, head, signature in checkpoints:
            try:
                self.public_key.verify(signature, checkpoint_message(k, n, signed_count, head))
            except InvalidSignature:
                return Verified(False, count, checkpoint, f"checkpoint: checkpoint {k} at "
                                f"notification {n} has a bad signature", n, "checkpoint")
            if heads.get(n) != (head, signed_count):
                return Verified(False, count, checkpoint, f"checkpoint: the chain at notification "
                                f"{n} no longer matches signed checkpoint {k}; history between "
                                f"checkpoint {k - 1} and {k} was rewritten", n, "checkpoint")
            checkpoint, signed = k, signed_count
        unsigned = count - signed if checkpoint else count
        tail = f"; {unsigned} later events are chained but not yet signed" if unsigned else ""
        return Verified(True, count, checkpoint,
                        f"verified {count} events up to checkpoint {checkpoint}{tail}")

    # -- exporting -----------------------------------------------------------

    def export(self, start: int = 1, stop: int | None = None) -> Iterable[dict[str, Any]]:
        """JSON-ready records: a header, each sealed event with its hashes, the checkpoints."""
        rows = self.chain(1, stop)
        previous = GENESIS
        prev_of: dict[int, bytes] = {}
        for n, _, h in rows:
            prev_of[n] = previous
            previous = h
        wanted = {n: (c, h) for n, c, h in rows if n >= start}
        yield {"format": "linkage-seal-v1", "public_key": public_pem(self.public_key),
               "hash": "sha256(prev_hash || canonical(event)); see infra/security/sealer.py"}
        last = max(wanted) if wanted else 0
        for event in self.events(last):
            if event.id not in wanted:
                continue
            content, h = wanted[event.id]
            yield {
                "notification_id": event.id,
                "originator_id": str(UUID(str(event.originator_id))),
                "originator_version": event.originator_version,
                "topic": event.topic,
                "state_b64": base64.b64encode(bytes(event.state)).decode(),
                "content": content.hex(),
                "prev_hash": prev_of[event.id].hex(),
                "hash": h.hex(),
            }
        for k, n, count, head, signature in self.checkpoints():
            if start <= n <= (stop if stop is not None else n):
                yield {"checkpoint": k, "notification_id": n, "count": count,
                       "hash": head.hex(), "signature": signature.hex()}


def verify_export(records: Iterable[dict[str, Any]]) -> int:
    """What an outsider runs on an export: recompute every hash and signature; events checked."""
    records = list(records)
    header = records[0]
    key = serialization.load_pem_public_key(header["public_key"].encode())
    assert isinstance(key, Ed25519PublicKey)
    heads: dict[int, bytes] = {}
    previous: bytes | None = None
    checked = 0
    for rec in records[1:]:
        if "checkpoint" in rec:
            head = bytes.fromhex(rec["hash"])
            key.verify(bytes.fromhex(rec["signature"]),
                       checkpoint_message(rec["checkpoint"], rec["notification_id"],
                                          rec["count"], head))
            if heads.get(rec["notification_id"], head) != head:
                raise ValueError(f"checkpoint {rec['checkpoint']} does not match the chain")
            continue
        prev = bytes.fromhex(rec["prev_hash"])
        if previous is not None and prev != previous:
            raise ValueError(f"notification {rec['notification_id']} does not link")
        event = Stored(rec["notification_id"], rec["originator_id"], rec["originator_version"],
                       rec["topic"], base64.b64decode(rec["state_b64"]))
        h = chain_hash(prev, event)
        if h.hex() != rec["hash"]:
            raise ValueError(f"notification {event.id} does not hash to its recorded value")
        heads[event.id] = previous = h
        checked += 1
    return checked


def stored_reader(recorder: Any, memory: bool = True) -> ReadStored:
    """Read raw notifications from an eventsourcing application recorder; with `memory`, what
    this process has just committed comes from memory (for sealing only: a reader that must see
    the table as it is now, to verify it, passes memory=False)."""

    if isinstance(recorder, LinkageSQLiteRecorder):
        if not memory:
            select = recorder.select_notification_rows
            return lambda start, limit: [Stored(*row) for row in select(start, limit)]
        select_rows, unsealed = recorder.select_notification_rows, recorder.unsealed

        def read_rows(start: int, limit: int) -> list[Stored]:
            # What this process just stored, as it stored it; otherwise the table.
            taken = unsealed.take(start, limit)
            if taken:
                return [Stored(*entry) for entry in taken]
            rows = select_rows(start, limit)
            if rows:
                unsealed.forget(rows[-1][0])
            return [Stored(*row) for row in rows]

        return read_rows

    def read(start: int, limit: int) -> list[Stored]:
        return [Stored(n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))
                for n in recorder.select_notifications(start=start, limit=limit)]

    return read


def build_sealer(settings: Settings, recorder: Any) -> Sealer:
    return Sealer(stored_reader(recorder),
                  Database.for_settings(settings, settings.sqlite_path),
                  load_signing_key(settings), checkpoint_every=settings.seal_checkpoint_every,
                  read_table=stored_reader(recorder, memory=False))
