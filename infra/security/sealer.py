"""The sealer: a hash chain over the notification log, with Ed25519-signed checkpoints.

The byte format is in `seal_format`. The chain rows and the sealer's tracking position are
written in one transaction. Every `checkpoint_every` events the head is signed; each signed
head is also appended to the witness file (LINKAGE_SEAL_WITNESS), once its transaction has
committed. Verifying and exporting read a snapshot and write nothing (`verification`,
`seal_export`).

In the same transaction the sealer appends each event as a leaf of the Merkle tree
(`merkle_store`), and at every checkpoint it also signs a tree head (`tree_head`): the heads an
outsider checks proofs against (docs/AUDIT-FORMAT.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.security import tree_head
from infra.security.merkle import pack as merkle_pack
from infra.security.merkle_store import Appender, TreeState, create_tables, store_head, tree_state
from infra.security.seal_format import GENESIS, Stored, checkpoint_message, seal_digests
from infra.security.seal_snapshot import TRACKING_NAME, SealSnapshot
from infra.security.secrets_file import read_or_create
from infra.security.verification import Verified, verify
from infra.security.witness import Head, Witness, key_id, witness_for
from infra.settings import Settings
from infra.store.sqldb import Database, Tx
from infra.store.sqlite_recorder import LinkageSQLiteRecorder

log = logging.getLogger(__name__)

# (start, limit) -> notifications with id >= start, in order
ReadStored = Callable[[int, int], Sequence[Stored]]


def _key_path(settings: Settings) -> Path:
    if settings.seal_key_path:
        return Path(settings.seal_key_path)
    if settings.keys_from_settings:
        raise ValueError("distributed mode needs the seal signing key every process shares: set "
                         "LINKAGE_SEAL_KEY to an Ed25519 private key (PEM) file (linkage up "
                         "makes one; README \"Keys\")")
    return settings.data_dir / "seal_ed25519.pem"


def new_signing_key() -> bytes:
    """A fresh Ed25519 private key, PEM (PKCS 8)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The configured seal key; embedded mode makes it on first use, distributed mode never
    does (each hub would sign with a key of its own)."""
    path = _key_path(settings)
    if settings.keys_from_settings and not path.is_file():
        raise ValueError(f"LINKAGE_SEAL_KEY names {path}, which is not a file: in distributed "
                         "mode the seal key is made once and given to every process")
    key = serialization.load_pem_private_key(read_or_create(path, new_signing_key),
                                             password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} must hold an Ed25519 private key")
    return key


def load_public_key(settings: Settings) -> tuple[Ed25519PublicKey | None, Path]:
    """The configured seal key's public half, read without creating anything; None if absent."""
    path = _key_path(settings)
    if not path.exists():
        return None, path
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} must hold an Ed25519 private key")
    return key.public_key(), path


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Sealer:
    def __init__(self, read: ReadStored, db: Database, key: Ed25519PrivateKey, *,
                 checkpoint_every: int = 100, batch_size: int = 500,
                 read_table: ReadStored | None = None, witness: Witness | None = None,
                 merkle: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.read = read  # for sealing: may serve what this process just committed from memory
        # for reading the table as it is now
        self.read_table = read_table or read
        self.db = db
        self.key = key
        self.public_key = key.public_key()
        self.public_pem = public_pem(self.public_key)
        self.key_id = key_id(self.public_key)
        self.checkpoint_every = max(1, checkpoint_every)
        self.batch_size = batch_size
        self.witness = witness
        self.merkle = merkle  # False: the chain alone (the benchmark's baseline)
        self.clock = clock  # seconds since 1970, for the tree heads' timestamps
        self._tree_stuck = False
        # The child that seals for this sealer when the server runs it in a process of its own
        # (infra/security/seal_process.py); None when it seals here.
        self.process: Any = None
        with db.ddl() as tx:
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
            create_tables(tx.execute, blob)

    # -- sealing -------------------------------------------------------------

    def _head(self, tx: Tx, lock: bool = False) -> tuple[int, int, bytes]:
        # On PostgreSQL a second sealer (several hubs) waits here.
        suffix = " FOR UPDATE" if lock and self.db.kind == "postgres" else ""
        rows = tx.execute("SELECT notification_id, count, head FROM linkage_seal_tracking "
                          "WHERE name = ?" + suffix, (TRACKING_NAME,))
        if not rows:
            return 0, 0, GENESIS
        position, count, head = rows[0]
        return int(position), int(count), bytes(head)

    def position(self) -> int:
        with self.db.read() as tx:
            return self._head(tx)[0]

    def seal_batch(self) -> int:
        """Seal the next notifications after the tracked position; how many were sealed.

        The chain, the tree's leaves and nodes and the signatures are computed before the write
        transaction, which then only checks that nothing moved meanwhile (the chain's head, the
        tree, the last checkpoint) and writes the rows: on SQLite that transaction holds the
        event store's write turn, which officers' commands wait for."""
        with self.db.read() as tx:  # the write transaction below checks nothing moved
            position, sealed, start_head = self._head(tx)
            tree = tree_state(tx.execute) if self.merkle else None
            last = self._last_checkpoint(tx)
        if tree is not None and tree.size < sealed:
            return self._tree_catch_up(tree, position)
        # Read outside the write transaction: on SQLite it would hold the store's write lock.
        events = self.read(position + 1, self.batch_size)
        if not events:
            return 0
        before = _tree_key(tree)
        growing = self._growing(tree, sealed)
        existed = growing is not None and growing.size > 0
        appender = Appender(growing) if growing is not None else None
        k, signed_count = last
        head, count = start_head, sealed
        rows: list[tuple[int, bytes, bytes]] = []
        checkpoints: list[tuple[Any, ...]] = []
        heads: list[tree_head.TreeHead] = []
        signed: list[Head | tree_head.TreeHead] = []
        for event in events:
            content, head, leaf = seal_digests(head, event)
            count += 1
            rows.append((event.id, content, head))
            if appender is not None:
                appender.add(event.id, leaf)
            if count - signed_count >= self.checkpoint_every:
                k += 1
                row, made = self._checkpoint(k, event.id, count, head)
                checkpoints.append(row)
                signed.append(made)
                signed_count = count
                if appender is not None:
                    heads.append(self._tree_head(appender.state))
                    signed.append(heads[-1])
        with self.db.tx() as tx:
            if self._head(tx, lock=True) != (position, sealed, start_head) \
                    or self._last_checkpoint(tx) != last:
                return 0  # another sealer moved on meanwhile; read again
            if self.merkle and _tree_key(tree_state(
                    tx.execute, " FOR UPDATE" if self.db.kind == "postgres" else "")) != before:
                return 0
            tx.executemany("INSERT INTO linkage_seal_chain (notification_id, content, hash) "
                           "VALUES (?, ?, ?)", rows)
            if checkpoints:
                tx.executemany("INSERT INTO linkage_seal_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)",
                               checkpoints)
            for made_head in heads:
                store_head(tx.execute, made_head, self.public_pem)
            position = events[-1].id
            if tx.execute("SELECT 1 FROM linkage_seal_tracking WHERE name = ?", (TRACKING_NAME,)):
                tx.execute("UPDATE linkage_seal_tracking SET notification_id = ?, count = ?, "
                           "head = ? WHERE name = ?", (position, count, head, TRACKING_NAME))
            else:
                tx.execute("INSERT INTO linkage_seal_tracking VALUES (?, ?, ?, ?)",
                           (TRACKING_NAME, position, count, head))
            if appender is not None:
                appender.write(tx.execute, tx.executemany, existed)
        self._witness(signed)
        return len(events)

    @staticmethod
    def _last_checkpoint(tx: Tx) -> tuple[int, int]:
        """(the last checkpoint's number, the count it signed), 0s when there is none."""
        k, count = tx.execute("SELECT MAX(k), MAX(count) FROM linkage_seal_checkpoints")[0]
        return int(k or 0), int(count or 0)

    def _growing(self, state: TreeState | None, count: int) -> TreeState | None:
        """The tree to extend along with the chain; None when it does not end where the chain
        does (its tables were altered: say so once, and keep sealing the chain)."""
        if state is None:
            return None
        if state.size == count:
            return state
        if not self._tree_stuck:
            self._tree_stuck = True
            log.error("the Merkle tree holds %d events but the seal chain %d: the seal tables "
                      "were altered; no tree heads are signed until they agree (run `linkage "
                      "audit verify`)", state.size, count)
        return None

    def _tree(self, tx: Tx, count: int) -> TreeState | None:
        """The tree to extend along with the chain, locked; None when it does not end where the
        chain does."""
        if not self.merkle:
            return None
        suffix = " FOR UPDATE" if self.db.kind == "postgres" else ""
        return self._growing(tree_state(tx.execute, suffix), count)

    def _tree_catch_up(self, tree: TreeState, position: int) -> int:
        """A store sealed before the tree existed: add its sealed events as leaves (from the
        table as it is now), up to the chain's position; how many were added."""
        events = [e for e in self.read_table(tree.notification_id + 1, self.batch_size)
                  if e.id <= position]
        if not events:
            return 0
        with self.db.tx() as tx:
            state = tree_state(tx.execute, " FOR UPDATE" if self.db.kind == "postgres" else "")
            if state.size != tree.size:
                return 0  # another sealer moved on meanwhile
            appender = Appender(state)
            for event in events:
                appender.add(event.id, seal_digests(GENESIS, event)[2])
            appender.write(tx.execute, tx.executemany, tree.size > 0)
        return len(events)

    def _tree_head(self, state: TreeState) -> tree_head.TreeHead:
        return tree_head.sign(self.key, state.size, state.notification_id,
                              int(self.clock() * 1000), state.root)

    def _sign_tree(self, tx: Tx, state: TreeState) -> tree_head.TreeHead:
        head = self._tree_head(state)
        store_head(tx.execute, head, self.public_pem)
        return head

    def _checkpoint(self, k: int, notification_id: int, count: int, head: bytes,
                    ) -> tuple[tuple[Any, ...], Head]:
        """A signed checkpoint: its row and its head for the witness."""
        signature = self.key.sign(checkpoint_message(k, notification_id, count, head))
        at = datetime.now(UTC).isoformat()
        return ((k, notification_id, count, head, signature, self.public_pem, at),
                Head(checkpoint=k, notification_id=notification_id, count=count, hash=head.hex(),
                     time=at, key=self.key_id, signature=signature.hex()))

    def _sign(self, tx: Tx, k: int, notification_id: int, count: int, head: bytes) -> Head:
        row, made = self._checkpoint(k, notification_id, count, head)
        tx.execute("INSERT INTO linkage_seal_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        return made

    def _witness(self, signed: list[Head | tree_head.TreeHead]) -> None:
        # Only after the commit: a head whose transaction rolled back would read as a rewrite.
        # A crash between the two loses a head from the witness, never adds a false one.
        if self.witness is not None and signed:
            try:
                self.witness.append(signed)
            except OSError:  # the chain is committed: keep sealing, say loudly what is missing
                log.exception("could not append %d signed heads to the witness %s",
                              len(signed), self.witness.path)

    def catch_up(self, stopped: Callable[[], bool] = lambda: False) -> int:
        """Seal until nothing is left (or `stopped()`, checked between batches)."""
        total = 0
        while not stopped() and (done := self.seal_batch()):
            total += done
        return total

    def checkpoint_now(self) -> int | None:
        """Sign the chain head (and the tree head) if events were sealed since the last
        checkpoint; the checkpoint's number."""
        made: list[Head | tree_head.TreeHead] = []
        k: int | None = None
        with self.db.tx() as tx:
            position, count, head = self._head(tx, lock=True)
            last_k, signed = tx.execute("SELECT MAX(k), MAX(count) FROM linkage_seal_checkpoints")[0]
            if count and count != int(signed or 0):
                k = int(last_k or 0) + 1
                made.append(self._sign(tx, k, position, count, head))
            tree = self._tree(tx, count)
            if tree is not None and tree.size:
                (last_size,) = tx.execute("SELECT MAX(tree_size) FROM linkage_seal_heads")[0]
                if tree.size != int(last_size or 0):
                    made.append(self._sign_tree(tx, tree))
        self._witness(made)
        return k

    async def run(self, interval: float = 1.0, stopped: Callable[[], bool] = lambda: False,
                  checkpoint_seconds: float = 300.0,
                  monotonic: Callable[[], float] = time.monotonic) -> None:
        """Follow the log until cancelled (a background task of `linkage serve`); sign the head
        at least every `checkpoint_seconds` while events keep coming, and once more within
        `checkpoint_seconds` after the last one (no unsigned tail when the system goes idle)."""
        import asyncio

        signed_at = monotonic()
        while not stopped():
            signed_at = await asyncio.to_thread(self.follow_step, signed_at, checkpoint_seconds,
                                                monotonic)
            await asyncio.sleep(interval)

    def follow_step(self, signed_at: float, checkpoint_seconds: float,
                    monotonic: Callable[[], float] = time.monotonic,
                    stopped: Callable[[], bool] = lambda: False) -> float:
        """One round of following the log: seal what is new, sign the head if it is due; when
        the head was last signed (`run` here, `seal_process` in a process of its own)."""
        try:
            self.catch_up(stopped)
            if monotonic() - signed_at >= checkpoint_seconds:
                self.checkpoint_now()
                signed_at = monotonic()
        except Exception:  # keep following; the position only moves with the chain rows
            log.exception("sealing failed; retrying")
        return signed_at

    # -- reading -------------------------------------------------------------

    def chain(self, start: int = 1, stop: int | None = None) -> list[tuple[int, bytes, bytes]]:
        with self.db.read() as tx:
            rows = tx.execute("SELECT notification_id, content, hash FROM linkage_seal_chain "
                              "WHERE notification_id >= ? AND notification_id <= ? "
                              "ORDER BY notification_id",
                              (start, stop if stop is not None else 2**62))
        return [(int(n), bytes(c), bytes(h)) for n, c, h in rows]

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

    def verify(self, heads: Sequence[tuple[int, Head]] = ()) -> Verified:
        """Verify the store this sealer writes, read-only (see `verification.verify`)."""
        db = self.db
        with SealSnapshot.open(db.kind, db.sqlite_path, db.dsn, db.schema) as snapshot:
            return verify(snapshot, self.public_key, heads)


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


def warn_key_inside_data_dir(settings: Settings) -> bool:
    """Warn when the seal key lies inside the data dir: whoever can rewrite the store there can
    then sign the rewritten history too (docs/AUDIT-FORMAT.md section 7). True when it does."""
    path = _key_path(settings)
    if not path.resolve().is_relative_to(settings.data_dir.resolve()):
        return False
    log.warning("the seal signing key %s lies inside the data dir %s: whoever can rewrite the "
                "store can sign the rewritten history with it; keep the key elsewhere "
                "(LINKAGE_SEAL_KEY) and the signed heads on another machine "
                "(LINKAGE_SEAL_WITNESS)", path, settings.data_dir)
    return True


def _tree_key(state: TreeState | None) -> tuple[int, int, bytes] | None:
    """What identifies a tree's state (to see that it did not move)."""
    if state is None:
        return None
    return state.size, state.notification_id, merkle_pack(state.frontier)


def build_sealer(settings: Settings, recorder: Any, warn: bool = True) -> Sealer:
    if warn:  # the server warns once; its sealer process does not repeat it
        warn_key_inside_data_dir(settings)
    return Sealer(stored_reader(recorder),
                  Database.for_settings(settings, settings.sqlite_path, turns=True),
                  load_signing_key(settings), checkpoint_every=settings.seal_checkpoint_every,
                  read_table=stored_reader(recorder, memory=False),
                  witness=witness_for(settings))
