"""The web console's alert panel in headless Chromium: storm summary, counts, acknowledge."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.alerting import CAMERA, CENTERS, START, alert

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")


def test_alert_panel_shows_storm_and_acknowledges(server: RunningServer) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    alerts = [alert(f"b{i}", start_time=START + i * 0.01) for i in range(30)]
    alerts.append(alert("plate", label="car", plate="冀G12345", start_time=START + 500,
                        camera=CAMERA.replace("001-1", "002-1")))
    response = httpx.post(f"{server.url}/api/ingest/alerts", json={"alerts": alerts},
                          headers=server.feed_headers)
    assert response.status_code == 200, response.text
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM) if CHROMIUM.exists() else None)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server.url}/?center={CENTERS[0]}#token={server.token or ''}")
            page.wait_for_selector("#alert-list li[data-alert]", timeout=15000)
            assert page.locator(".storm").count() >= 1
            first = page.locator("#alert-list li[data-alert]").first
            assert "prio-critical" in (first.get_attribute("class") or "")  # the watch-listed plate
            before = page.locator("#alert-list li[data-alert]").count()
            first.locator("button[data-action=acknowledge]").click()
            page.wait_for_function(
                f"document.querySelectorAll('#alert-list li[data-alert]').length === {before - 1}",
                timeout=10000)
            page.wait_for_function(
                "document.getElementById('alerts-unack').dataset.n === '30'", timeout=10000)
            page.on("dialog", lambda dialog: dialog.accept())
            page.locator(".storm button[data-storm]").first.click()
            page.wait_for_function(
                "document.getElementById('alerts-unack').dataset.n === '0'", timeout=10000)
            assert errors == []
        finally:
            browser.close()
