"""The one way every browser test finds and starts Chromium.

`LINKAGE_CHROMIUM` names the executable (default `/usr/bin/chromium`, Debian's package). Missing:
the test is skipped outside CI and fails under CI=true (tests/conftest.py `unavailable`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.conftest import unavailable

CHROMIUM = os.environ.get("LINKAGE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """The Chromium executable; skips (or fails under CI) when it is not installed."""
    if not os.path.exists(CHROMIUM):
        unavailable("Chromium", f"{CHROMIUM} not installed (apt-get install chromium, or set "
                    "LINKAGE_CHROMIUM)")
    return CHROMIUM


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright Browser), closed afterwards."""
    path = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
