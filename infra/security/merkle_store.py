"""Where the sealer keeps the Merkle tree, and how proofs are read from it.

Tables (written by the sealer, in the transaction that writes the chain rows):

- `linkage_seal_leaves` (idx, notification_id, hash): leaf i is the i-th sealed notification;
- `linkage_seal_nodes` (level, idx, hash): the complete subtrees whose height is a multiple of
  `STRIDE` (4): any other node is folded from at most 2**3 stored ones below it, so any subtree
  hash, hence any proof, takes O(log n) small reads (`merkle.subtree`) and never a refold, while
  the sealer writes about 1.07 rows per event instead of 2;
- `linkage_seal_tree` (name, size, notification_id, frontier): the compact frontier, all the
  sealer needs to append leaves and compute the root;
- `linkage_seal_heads` (tree_size, notification_id, timestamp, root, signature, public_key): the
  signed tree heads.

Reading goes through a `Query` (a transaction's execute, or a read-only `SealSnapshot`'s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from infra.security import merkle
from infra.security.tree_head import TreeHead
from infra.security.witness import key_id

TREE_TABLES = ("linkage_seal_leaves", "linkage_seal_nodes", "linkage_seal_tree",
               "linkage_seal_heads")
TREE_NAME = "sealer"
STRIDE = 4  # node levels stored: 4, 8, 12, ... (0 is the leaves table)

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def create_tables(execute: Query, blob: str) -> None:
    sqlite = blob == "BLOB"
    # On SQLite an INTEGER PRIMARY KEY is the rowid itself: one b-tree per table, not two.
    execute("CREATE TABLE IF NOT EXISTS linkage_seal_leaves ("
            f"idx {'INTEGER' if sqlite else 'BIGINT'} PRIMARY KEY, "
            f"notification_id BIGINT NOT NULL, hash {blob} NOT NULL)", ())
    execute("CREATE TABLE IF NOT EXISTS linkage_seal_nodes (level INTEGER NOT NULL, "
            f"idx BIGINT NOT NULL, hash {blob} NOT NULL, PRIMARY KEY (level, idx))"
            + (" WITHOUT ROWID" if sqlite else ""), ())
    execute("CREATE TABLE IF NOT EXISTS linkage_seal_tree (name TEXT PRIMARY KEY, "
            f"size BIGINT NOT NULL, notification_id BIGINT NOT NULL, frontier {blob} NOT NULL)",
            ())
    execute("CREATE TABLE IF NOT EXISTS linkage_seal_heads (tree_size BIGINT PRIMARY KEY, "
            "notification_id BIGINT NOT NULL, timestamp BIGINT NOT NULL, "
            f"root {blob} NOT NULL, signature {blob} NOT NULL, public_key TEXT NOT NULL)", ())


@dataclass
class TreeState:
    size: int
    notification_id: int
    frontier: list[bytes]

    @property
    def root(self) -> bytes:
        return merkle.root(self.frontier)


def tree_state(query: Query, lock: str = "") -> TreeState:
    rows = query("SELECT size, notification_id, frontier FROM linkage_seal_tree WHERE name = ?"
                 + lock, (TREE_NAME,))
    if not rows:
        return TreeState(0, 0, [])
    size, n, frontier = rows[0]
    return TreeState(int(size), int(n), merkle.unpack(bytes(frontier)))


class Appender:
    """Collects the rows of leaves appended in one transaction; `write` stores them."""

    def __init__(self, state: TreeState) -> None:
        self.state = state
        self.leaves: list[tuple[int, int, bytes]] = []
        self.nodes: list[tuple[int, int, bytes]] = []

    def add(self, notification_id: int, leaf: bytes) -> None:
        state = self.state
        self.leaves.append((state.size, notification_id, leaf))
        made = merkle.append(state.frontier, state.size, leaf)
        if len(made) >= STRIDE:
            self.nodes.extend(node for node in made if node[0] % STRIDE == 0)
        state.size += 1
        state.notification_id = notification_id

    def write(self, execute: Query, executemany: Callable[[str, Any], None],
              existed: bool) -> None:
        executemany("INSERT INTO linkage_seal_leaves (idx, notification_id, hash) "
                    "VALUES (?, ?, ?)", self.leaves)
        if self.nodes:
            executemany("INSERT INTO linkage_seal_nodes (level, idx, hash) VALUES (?, ?, ?)",
                        self.nodes)
        state = self.state
        frontier = merkle.pack(state.frontier)
        if existed:
            execute("UPDATE linkage_seal_tree SET size = ?, notification_id = ?, frontier = ? "
                    "WHERE name = ?", (state.size, state.notification_id, frontier, TREE_NAME))
        else:
            execute("INSERT INTO linkage_seal_tree (name, size, notification_id, frontier) "
                    "VALUES (?, ?, ?, ?)", (TREE_NAME, state.size, state.notification_id,
                                            frontier))


def store_head(execute: Query, head: TreeHead, public_pem: str) -> None:
    execute("INSERT INTO linkage_seal_heads (tree_size, notification_id, timestamp, root, "
            "signature, public_key) VALUES (?, ?, ?, ?, ?, ?)",
            (head.tree_size, head.notification_id, head.timestamp, bytes.fromhex(head.root),
             bytes.fromhex(head.signature), public_pem))


class ProofUnavailable(LookupError):
    """A proof for something the tree does not hold (yet); the message says what it holds."""


class TreeReader:
    """Proofs and heads from the stored tree, through one query function (one snapshot)."""

    def __init__(self, query: Query) -> None:
        self.query = query
        self.subtree = merkle.subtree(self._node)

    def _node(self, level: int, index: int) -> bytes:
        base = level - level % STRIDE
        span = 1 << (level - base)  # nodes at the stored level below, folded into this one
        first = index * span
        if base == 0:
            rows = self.query("SELECT hash FROM linkage_seal_leaves WHERE idx >= ? AND idx < ? "
                              "ORDER BY idx", (first, first + span))
        else:
            rows = self.query("SELECT hash FROM linkage_seal_nodes WHERE level = ? AND idx >= ? "
                              "AND idx < ? ORDER BY idx", (base, first, first + span))
        if len(rows) != span:
            raise ProofUnavailable(f"the stored tree lacks node {index} at level {level}: its "
                                   "tables were altered (run `linkage audit verify`)")
        hashes = [bytes(row[0]) for row in rows]
        while len(hashes) > 1:
            hashes = [merkle.node_hash(hashes[i], hashes[i + 1])
                      for i in range(0, len(hashes), 2)]
        return hashes[0]

    def size(self) -> int:
        return tree_state(self.query).size

    def heads(self, start: int = 1, stop: int = 2**62, limit: int = 2**62) -> list[TreeHead]:
        rows = self.query("SELECT tree_size, notification_id, timestamp, root, signature, "
                          "public_key FROM linkage_seal_heads WHERE tree_size >= ? AND "
                          "tree_size <= ? ORDER BY tree_size LIMIT ?", (start, stop, limit))
        return [_head(row) for row in rows]

    def head(self, tree_size: int | None = None) -> TreeHead | None:
        """The signed head of that size (None: the latest)."""
        if tree_size is None:
            rows = self.query("SELECT tree_size, notification_id, timestamp, root, signature, "
                              "public_key FROM linkage_seal_heads ORDER BY tree_size DESC "
                              "LIMIT 1", ())
        else:
            rows = self.query("SELECT tree_size, notification_id, timestamp, root, signature, "
                              "public_key FROM linkage_seal_heads WHERE tree_size = ?",
                              (tree_size,))
        return _head(rows[0]) if rows else None

    def head_covering(self, tree_size: int) -> TreeHead | None:
        """The first signed head of at least that many leaves."""
        rows = self.query("SELECT tree_size, notification_id, timestamp, root, signature, "
                          "public_key FROM linkage_seal_heads WHERE tree_size >= ? "
                          "ORDER BY tree_size LIMIT 1", (tree_size,))
        return _head(rows[0]) if rows else None

    def leaf(self, notification_id: int) -> tuple[int, bytes] | None:
        """(leaf index, leaf hash) of a sealed notification: leaves are in notification order,
        so a binary search over their index (O(log n) reads, no second index to maintain)."""
        low, high = 0, self.size() - 1
        while low <= high:
            middle = (low + high) // 2
            rows = self.query("SELECT notification_id, hash FROM linkage_seal_leaves "
                              "WHERE idx = ?", (middle,))
            if not rows:
                raise ProofUnavailable(f"the stored tree lacks leaf {middle}: its tables were "
                                       "altered (run `linkage audit verify`)")
            found = int(rows[0][0])
            if found == notification_id:
                return middle, bytes(rows[0][1])
            if found < notification_id:
                low = middle + 1
            else:
                high = middle - 1
        return None

    def _signed(self, tree_size: int) -> TreeHead:
        head = self.head(tree_size)
        if head is None:
            latest = self.head()
            raise ProofUnavailable(
                f"no signed tree head of {tree_size} events; "
                + (f"the latest is of {latest.tree_size} events (notification "
                   f"{latest.notification_id})" if latest else "none is signed yet"))
        return head

    def inclusion(self, notification_id: int, tree_size: int | None = None
                  ) -> tuple[int, bytes, list[bytes], TreeHead]:
        """(leaf index, leaf hash, audit path, the signed head it leads to) for a notification;
        without a size, against the first signed head that covers it."""
        found = self.leaf(notification_id)
        if found is None:
            raise ProofUnavailable(f"notification {notification_id} is not sealed in the tree "
                                   f"(it holds {self.size()} events)")
        index, leaf = found
        if tree_size is None:
            covering = self.head_covering(index + 1)
            if covering is None:
                raise ProofUnavailable(f"notification {notification_id} is sealed but no signed "
                                       "tree head covers it yet; the sealer signs one within "
                                       "LINKAGE_SEAL_CHECKPOINT_SECONDS")
            head = covering
        else:
            head = self._signed(tree_size)
            if index >= tree_size:
                raise ProofUnavailable(f"notification {notification_id} is leaf {index}, "
                                       f"after the tree of {tree_size} events")
        return index, leaf, merkle.inclusion_proof(self.subtree, index, head.tree_size), head

    def consistency(self, first: int, second: int) -> tuple[list[bytes], TreeHead, TreeHead]:
        old, new = self._signed(first), self._signed(second)
        return merkle.consistency_proof(self.subtree, first, second), old, new


def _head(row: tuple[Any, ...]) -> TreeHead:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    size, n, timestamp, root, signature, pem = row
    key = serialization.load_pem_public_key(str(pem).encode())
    return TreeHead(tree_size=int(size), notification_id=int(n), timestamp=int(timestamp),
                    root=bytes(root).hex(),
                    key=key_id(key) if isinstance(key, Ed25519PublicKey) else None,
                    signature=bytes(signature).hex())
