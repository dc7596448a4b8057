"""Turns at writing the event store (infra/store/write_turn.py), as tests check them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path


def order_behind_a_held_turn(store: Path, write: Callable[[], None]) -> list[str]:
    """Run `write` in a thread while another holder (a second turn on the same store, as another
    process's is) has the turn, then release it: the order in which the write committed and the
    turn was released. ["released", "committed"] when the write waited for its turn."""
    from infra.store.write_turn import WriteTurn

    order: list[str] = []
    started = threading.Event()

    def run() -> None:
        started.set()
        write()
        order.append("committed")

    with WriteTurn(store):
        worker = threading.Thread(target=run)
        worker.start()
        started.wait(10)
        time.sleep(0.3)  # time enough to commit, were the turn not held
        order.append("released")
    worker.join(30)
    return order
