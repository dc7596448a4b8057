"""Run every `bench/bench_*.py` module's `main()` in turn, or only the ones named.

    python -m bench                  # all of them
    python -m bench commands         # bench/bench_commands.py (also: bench_commands)
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv)
    found = available()
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in names] or found
    unknown = [n for n in wanted if n not in found]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; expected one of: {', '.join(found)}",
              file=sys.stderr)
        return 2
    for name in wanted:
        module = importlib.import_module(f"bench.{name}")
        # Each benchmark parses its own options; run it with its defaults here.
        result = module.main([])
        if isinstance(result, int) and result:
            return result
    return 0


if __name__ == "__main__":
    sys.exit(main())
