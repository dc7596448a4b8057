"""Local secrets (HS256 secret, Ed25519 sealing key): created once, mode 0600."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The file's bytes; creates it with `make()` and mode 0600 when missing."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = make()
    # Write a private temporary file, then link it into place: the link is atomic and fails
    # if another process (a second hub starting at the same time) got there first, so no
    # process ever reads a half-written secret.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    try:
        os.link(tmp, path)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    return data
