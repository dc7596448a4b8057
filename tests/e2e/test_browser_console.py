"""The web console in headless Chromium: it connects, shows live data, switches language."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.browser import chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


def test_the_console_shows_live_counts_and_incidents(browser: Any, server: RunningServer) -> None:
    page = browser.new_page()
    page.add_init_script("localStorage.setItem('linkage.lang', 'en')")
    login = f"#token={server.token}" if server.token else ""
    page.goto(f"{server.url}/?center=130706001{login}")
    page.wait_for_selector("#conn-status[data-state=open]", timeout=15000)
    assert page.inner_text('#counts [data-status="reported"]').strip() == "0"
    with httpx.Client(base_url=server.url, headers=server.headers) as client:
        response = client.post("/api/incidents", json={
            "source": "hotline", "category": "noise", "grid": "130706001001001",
            "description": "browser test noise"})
        incident_id = response.json()["id"]
    page.wait_for_selector(f'#open-list [data-id="{incident_id}"]', timeout=15000)
    page.wait_for_function(
        "document.querySelector('#counts [data-status=\"reported\"]').textContent.trim() === '1'",
        timeout=15000)
    assert "browser test noise" in page.inner_text("#open-list") or \
        "Noise" in page.inner_text("#open-list")
    assert page.locator("#feed li").count() >= 1
    page.close()


def test_the_console_switches_to_chinese(browser: Any, server: RunningServer) -> None:
    page = browser.new_page()
    page.add_init_script("localStorage.setItem('linkage.lang', 'en')")
    login = f"#token={server.token}" if server.token else ""
    page.goto(f"{server.url}/{login}")
    page.wait_for_selector("#conn-status[data-state=open]", timeout=15000)
    english = page.inner_text("body")
    page.click("#lang-toggle")
    page.wait_for_function("document.body.innerText.includes('张家口')", timeout=5000)
    chinese = page.inner_text("body")
    assert chinese != english
    page.close()
