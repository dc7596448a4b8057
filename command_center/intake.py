"""Intake state shared by every ingest path: per-feed-key rate limits and counters."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from command_center.payloads import camera_of


class RateLimiter:
    """A token bucket per feed key: `rate` alerts per second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst <= 0:
            raise ValueError(f"rate and burst must be positive; got rate={rate}, burst={burst}")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """0.0 when allowed (tokens taken), else the seconds to wait before retrying."""
        cost = min(cost, self.burst)  # a batch larger than the burst still gets through, alone
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


@dataclass
class IntakeStats:
    """Counters for GET /api/ingest/stats (per path and outcome), and the MQTT dead letters."""

    counts: dict[str, int] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    keep_dead_letters: int = 100
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def dead_letter(self, path: str, reason: str, payload: bytes) -> None:
        # The camera, read from the whole payload (only its start is kept), places the letter in
        # a jurisdiction: GET /api/ingest/stats shows each reader only its own.
        camera = camera_of(payload)
        with self._lock:
            self.counts[f"{path}.dead_letter"] = self.counts.get(f"{path}.dead_letter", 0) + 1
            self.dead_letters.append(
                {"path": path, "reason": reason, "camera": camera,
                 "payload": payload[:500].decode("utf-8", "replace")}
            )
            del self.dead_letters[: -self.keep_dead_letters]

    def letters(self) -> list[dict[str, Any]]:
        """Every dead letter kept, oldest first."""
        with self._lock:
            return list(self.dead_letters)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"counts": dict(sorted(self.counts.items())),
                    "dead_letter": sum(v for k, v in self.counts.items() if k.endswith(".dead_letter")),
                    "recent_dead_letters": list(self.dead_letters[-20:])}


@dataclass
class Intake:
    limiter: RateLimiter
    stats: IntakeStats = field(default_factory=IntakeStats)
    max_batch: int = 1000
    max_body_bytes: int = 8 << 20
