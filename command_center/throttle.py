"""Authentication failures per client address: a flood of bad credentials is refused before any
token is decoded.

Each address has a bucket of `burst` failures, refilled at `rate` a second; every 401 takes one.
While an address's bucket is empty, `ThrottleMiddleware` answers each of its requests 429 with
Retry-After (a websocket handshake is refused before the upgrade, HTTP 403 as every refused
handshake), in front of routing: a refused request costs a dictionary lookup, never a signature
check. The address is the one the
server sees (`scope["client"]`): behind a reverse proxy, run uvicorn with its proxy-headers options
so that it is the client's. A refused address is logged once, when it runs out; the access-log
lines of its refused requests are dropped (`QuietRefusals`): a flood must not become a flood of
log lines.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from command_center.problems import problem_response

log = logging.getLogger(__name__)


class FailureThrottle:
    """Token buckets of authentication failures, one per client address, at most `capacity`."""

    def __init__(self, rate: float, burst: int, *, capacity: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"the authentication failure limit needs rate > 0 and burst >= 1; "
                             f"got rate={rate}, burst={burst}")
        self.rate = rate
        self.burst = float(burst)
        self.capacity = capacity
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)
        self._lock = threading.Lock()

    def _tokens(self, address: str, now: float) -> float:
        tokens, at = self._buckets.get(address, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def wait(self, address: str) -> float:
        """Seconds until `address` may try credentials again; 0.0 when it may now."""
        if address not in self._buckets:
            return 0.0
        with self._lock:
            tokens = self._tokens(address, self.clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def failed(self, address: str) -> None:
        """Count one failed authentication from `address`."""
        with self._lock:
            now = self.clock()
            tokens = self._tokens(address, now)
            if address not in self._buckets and len(self._buckets) >= self.capacity:
                self._evict(now)
            self._buckets[address] = (max(0.0, tokens - 1), now)
        if 1 <= tokens < 2:
            log.warning("%s ran out of failed authentications (%g at once, then %g a second); "
                        "its requests are refused (429) meanwhile", address or "an unknown address",
                        self.burst, self.rate)

    def _evict(self, now: float) -> None:
        # Buckets that refilled carry no state; if an address spray left none such, the oldest
        # tenth go (their holders merely get their full budget back).
        full = [a for a, (tokens, at) in self._buckets.items()
                if tokens + (now - at) * self.rate >= self.burst]
        for address in full or list(self._buckets)[: max(1, self.capacity // 10)]:
            del self._buckets[address]


class ThrottleMiddleware:
    """Pure ASGI: refuses requests from an address out of authentication failures."""

    def __init__(self, app: ASGIApp, throttle: FailureThrottle) -> None:
        self.app = app
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            address = client[0] if client else ""
            wait = self.throttle.wait(address)
            if wait > 0:
                retry = max(1, math.ceil(wait))
                if scope["type"] == "websocket":
                    # uvicorn's sans-I/O websockets log a denial response with a status as a
                    # failed handshake (an ERROR line per refusal): refuse it as others are.
                    await WebSocket(scope, receive, send).close(1008, "too many failed "
                                                                      "authentications")
                    return
                response = problem_response(
                    429, f"too many failed authentications from {address}; retry after {retry}s "
                         "with valid credentials", instance=scope.get("path"),
                    headers={"Retry-After": str(retry)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class QuietRefusals(logging.Filter):
    """Drops uvicorn's access-log lines of the requests the throttle refuses."""

    def __init__(self, throttle: FailureThrottle) -> None:
        super().__init__()
        self.throttle = throttle

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn.access: (client "host:port", method, path, HTTP version, status)
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and args[4] == 429:
            return self.throttle.wait(str(args[0]).rsplit(":", 1)[0]) <= 0
        return True
