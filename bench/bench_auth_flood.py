"""An officer's latency under a flood of bad bearer tokens from another address (#11).

`linkage serve` in a child process (`bench_embedded.serve`); `bench/_flood.py` (a process of its own) sends 2,000 requests/s
with a bad token from 127.0.0.2 in windows of one second with quiet seconds between, while an
officer at 127.0.0.1 reads the city view in a loop. The officer's requests of the flooded and of the
quiet seconds are compared, so both see the same background load of the machine: the ratio of
their p99s is the result (the hardening issue asked for ≤ 3×).

    .venv/bin/python -m bench.bench_auth_flood [--rounds 5] [--rate 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ATTACKER = "127.0.0.2"  # all of 127/8 is loopback on Linux: the server sees another address
VIEW = "/api/centers/130700/view"


@dataclass
class Flood:
    """The officer's request times in flooded and quiet windows, and what the flood got back."""

    flooded: list[float]
    quiet: list[float]
    sent: int
    statuses: dict[int, int]

    def summary(self) -> str:
        def p99(samples: list[float]) -> float:
            return statistics.quantiles(samples, n=100)[98] * 1000

        return (f"officer p99 {p99(self.quiet):.1f} ms in quiet seconds ({len(self.quiet)} "
                f"requests), {p99(self.flooded):.1f} ms under the flood ({len(self.flooded)}): "
                f"{p99(self.flooded) / p99(self.quiet):.2f}x")


def measure(url: str, port: int, headers: dict[str, str], *, rate: int = 2000,
            rounds: int = 5, pulse: float = 1.0) -> Flood:
    """Flood the server at `port` from ATTACKER while an officer reads; every officer request
    must be answered 200 (an AssertionError says which was not)."""
    with httpx.Client(base_url=url, headers=headers, timeout=10) as officer:
        for _ in range(50):  # warm up
            assert officer.get(VIEW).status_code == 200
        flood = subprocess.Popen(
            [sys.executable, "-m", "bench._flood", "--port", str(port), "--source", ATTACKER,
             "--rate", str(rate), "--pulse", str(pulse), "--rounds", str(rounds)],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
        try:
            assert flood.stdout is not None
            plan = json.loads(flood.stdout.readline())
            start, pulse = plan["start"], plan["pulse"]
            flooded: list[float] = []
            quiet: list[float] = []
            while (sent := time.monotonic()) < start + 2 * plan["rounds"] * pulse:
                response = officer.get(VIEW)
                took = time.monotonic() - sent
                assert response.status_code == 200, response.text
                window, into = divmod(sent - start, pulse)
                # Leave out the first tenth of each window (the flood starting or draining) and
                # requests that straddle two windows.
                if sent >= start and into >= pulse / 10 and into + took < pulse:
                    (flooded if int(window) % 2 == 0 else quiet).append(took)
            result: dict[str, Any] = json.loads(flood.stdout.readline())
        finally:
            flood.kill()
            flood.wait(10)
    return Flood(flooded, quiet, int(result["sent"]),
                 {int(k): int(v) for k, v in result["statuses"].items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_auth_flood", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=int, default=2000)
    args = parser.parse_args(argv)
    from bench.bench_embedded import serve

    with tempfile.TemporaryDirectory() as tmp, serve(Path(__file__).parents[1], Path(tmp)) as server:
        result = measure(server.url, int(server.url.rsplit(":", 1)[1]), server.headers,
                         rate=args.rate, rounds=args.rounds)
    print(result.summary())
    print(f"flood: {result.sent} sent, statuses {result.statuses}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
