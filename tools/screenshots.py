"""Screenshots of the console's main screens in zh-CN and English, for the README.

Starts the embedded command center on a free port (a temporary data directory), fills it with
demo-like data (bench/_console_seed.py), and saves, at 1600×1000, under docs/screenshots/:
console, drawer (an incident open), map (a grid hovered) and replay, each as `<screen>-<lang>.png`.

    .venv/bin/python tools/screenshots.py [--chromium /usr/bin/chromium]

Not a test: it asserts nothing; read the pictures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench._console_seed import TOWNSHIP, seed  # noqa: E402
from bench._server import start_server  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
LANGS = {"zh-CN": "zh", "en": "en"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=os.environ.get("LINKAGE_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            _, feed_key = server.embedded.keys.issue("screenshots")
            grids = [g.id for g in server.embedded.jurisdiction.grids_under(TOWNSHIP)]
            auditor = server.embedded.tokens.issue("auditor", "auditor", None)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                seeded = False
                for lang, tag in LANGS.items():
                    page = browser.new_page(viewport={"width": 1600, "height": 1000})
                    page.add_init_script(f"localStorage.setItem('linkage.lang', '{lang}')")
                    page.goto(f"{server.url}/?center={TOWNSHIP}#token={server.token}")
                    page.wait_for_selector("#conn-status[data-state=open]", timeout=15000)
                    if not seeded:  # reported while the console is open: the alarm rings
                        seed(server.url, server.headers, {"X-API-Key": feed_key}, grids[:12])
                        seeded = True
                    else:
                        httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
                            "source": "hotline", "category": "fire_hazard", "severity": "major",
                            "grid": grids[3], "description": "仓库内堆放易燃物品"}).raise_for_status()
                    page.wait_for_selector("#open-list tr.alarm", timeout=15000)
                    page.wait_for_selector("#map path.map-grid", timeout=15000)
                    page.wait_for_timeout(1500)
                    page.screenshot(path=str(OUT / f"console-{tag}.png"))
                    busiest = page.evaluate("""() => [...document.querySelectorAll('#map path.map-grid')]
                        .sort((a, b) => Number(b.dataset.open || 0) - Number(a.dataset.open || 0))[0].dataset.grid""")
                    page.hover(f'#map path[data-grid="{busiest}"]')
                    page.wait_for_timeout(300)
                    page.locator(".panel-map").screenshot(path=str(OUT / f"map-{tag}.png"))
                    page.click("#open-list tr[data-id]")
                    page.wait_for_selector("#detail-timeline li", timeout=15000)
                    page.wait_for_timeout(300)
                    page.screenshot(path=str(OUT / f"drawer-{tag}.png"))
                    page.close()
                    replay = browser.new_page(viewport={"width": 1600, "height": 1000})
                    replay.add_init_script(f"localStorage.setItem('linkage.lang', '{lang}')")
                    replay.goto(f"{server.url}/replay?center={TOWNSHIP}#token={auditor}")
                    replay.wait_for_selector("#open-at tr", timeout=15000)
                    replay.click("#open-at tr")
                    replay.wait_for_selector("#history li", timeout=15000)
                    time.sleep(0.3)
                    replay.screenshot(path=str(OUT / f"replay-{tag}.png"))
                    replay.close()
                browser.close()
        finally:
            server.stop()
    for png in sorted(OUT.glob("*.png")):
        print(f"{png.relative_to(ROOT)}  {png.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
