"""Signed chain heads kept outside the data dir: the witness file, and heads given to `verify`.

One head is one JSON line (format version 1; the keys in this order):

    {"kind":"linkage-seal-head","version":1,"checkpoint":K,"notification_id":N,"count":C,
     "hash":"<64 hex>","time":"<ISO 8601>","key":"<key id>","signature":"<128 hex>"}

`signature` is the checkpoint's Ed25519 signature (see `seal_format.checkpoint_message`: it covers
K, N, C and hash); `time` and `key` are informational. `kind` and `version` name the format, so a
later one (signed tree heads of a Merkle tree) can be told apart. The sealer appends every head it
signs to LINKAGE_SEAL_WITNESS; `linkage audit export-head` prints the latest one.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infra.settings import Settings

log = logging.getLogger(__name__)

KIND = "linkage-seal-head"
VERSION = 1
TREE_KIND = "linkage-tree-head"  # signed tree heads (tree_head.py), in the same witness file
EXPECTED = ("a signed head: a line of `linkage audit export-head` or of the LINKAGE_SEAL_WITNESS "
            f'file, {{"kind":"{KIND}","version":{VERSION},"checkpoint":…,"notification_id":…,'
            '"count":…,"hash":…,"signature":…}, or a checkpoint record of `linkage audit export`')

Positive = Annotated[int, msgspec.Meta(ge=1)]


class Head(msgspec.Struct, frozen=True, kw_only=True):
    """A signed checkpoint: the chain's hash after `count` events, at `notification_id`."""

    kind: str = KIND
    version: int = VERSION
    checkpoint: Positive
    notification_id: Positive
    count: Positive
    hash: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
    time: str | None = None
    key: str | None = None  # key_id() of the signing key; absent in `audit export` records
    signature: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{128}$")]


class _Format(msgspec.Struct):
    kind: str = KIND
    version: int = VERSION


class HeadFileError(ValueError):
    """A head file that cannot be read as heads; the message names the line and what was wrong."""


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name of a public key (SHA-256 of its raw bytes, first 8 bytes)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).digest()[:8].hex()


def encode(head: Head) -> bytes:
    return msgspec.json.encode(head) + b"\n"


class _TreeHeadLine(Exception):
    """A signed tree head: read by `tree_head.read_tree_heads`, skipped here."""


def _decode(text: bytes) -> Head:
    form = msgspec.json.decode(text, type=_Format)
    if form.kind == TREE_KIND:
        raise _TreeHeadLine
    if (form.kind, form.version) != (KIND, VERSION):
        raise HeadFileError(f"kind {form.kind!r} version {form.version} is not a format this "
                            f"linkage reads (kind {KIND!r}, version {VERSION})")
    return msgspec.json.decode(text, type=Head)


def _bad(where: str, exc: Exception) -> HeadFileError:
    return HeadFileError(f"{where}: {exc}; expected {EXPECTED}")


def read_heads(path: Path) -> list[tuple[int, Head]]:
    """The heads in an exported head (one JSON object) or a witness file (JSON Lines), each with
    its line number."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HeadFileError(f"cannot read {path}: {exc.strerror}") from None
    if not data.strip():
        raise HeadFileError(f"{path} is empty; expected {EXPECTED}")
    try:  # one object, perhaps spread over several lines
        return [(1, _decode(data))]
    except _TreeHeadLine:
        return []
    except (msgspec.ValidationError, HeadFileError) as exc:  # one object, not a head
        raise _bad("line 1", exc) from None
    except msgspec.DecodeError as exc:  # not one JSON document: JSON Lines, or malformed
        if len(data.strip().splitlines()) == 1:
            raise _bad("line 1", exc) from None
    heads = []
    lines = data.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            heads.append((number, _decode(line)))
        except _TreeHeadLine:
            continue
        except (msgspec.MsgspecError, HeadFileError) as exc:
            bad = _bad(f"line {number}", exc)
            if number == len(lines):  # no newline after it
                raise HeadFileError(f"{bad} (the last line has no newline: if the writer "
                                    "stopped mid-line, remove that line)") from None
            raise bad from None
    return heads


class Witness:
    """Appends heads to a file, durably (fsync) and append-only (O_APPEND), one line each."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, heads: Sequence[msgspec.Struct]) -> None:
        if not heads:
            return
        data = memoryview(b"".join(msgspec.json.encode(head) + b"\n" for head in heads))
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:  # a new file's directory entry must survive a crash as well
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)


class HttpWitness(Witness):
    """Sends heads to a witness on another machine: one POST per batch, the heads as JSON Lines
    (application/x-ndjson); anything but a 2xx answer is an OSError (the sealer logs it)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        super().__init__(Path(url))
        self.url = url
        self.timeout = timeout

    def append(self, heads: Sequence[msgspec.Struct]) -> None:
        if not heads:
            return
        import httpx

        body = b"".join(msgspec.json.encode(head) + b"\n" for head in heads)
        try:
            answer = httpx.post(self.url, content=body, timeout=self.timeout,
                                headers={"Content-Type": "application/x-ndjson"})
        except httpx.HTTPError as exc:
            raise OSError(f"witness {self.url}: {exc}") from None
        if not answer.is_success:
            raise OSError(f"witness {self.url} answered {answer.status_code}")


def witness_for(settings: Settings) -> Witness | None:
    """The witness LINKAGE_SEAL_WITNESS names, if any: an http(s) URL, or a file (with a warning
    when it lies inside the data dir)."""
    if not settings.seal_witness:
        return None
    if settings.seal_witness.startswith(("http://", "https://")):
        return HttpWitness(settings.seal_witness)
    path = Path(settings.seal_witness)
    if path.resolve().is_relative_to(settings.data_dir.resolve()):
        log.warning("LINKAGE_SEAL_WITNESS=%s lies inside the data dir %s: whoever can rewrite "
                    "the store there can rewrite the witness too; keep it on another disk or "
                    "host", path, settings.data_dir)
    return Witness(path)
