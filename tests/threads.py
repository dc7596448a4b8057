"""Which threads call a method (the projection runner's and the sealer's reads, in the tests that
check where folding and sealing run)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def note_threads(owner: Any, name: str) -> tuple[set[str], Callable[[], None]]:
    """Wrap `owner.<name>` so that each call notes its thread's name (the real method still
    runs); the names so far, and a function that puts the real method back."""
    names: set[str] = set()
    real = getattr(owner, name)

    def noting(*args: Any, **kwargs: Any) -> Any:
        names.add(threading.current_thread().name)
        return real(*args, **kwargs)

    setattr(owner, name, noting)
    return names, lambda: setattr(owner, name, real)
