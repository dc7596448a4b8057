"""The replay page in headless Chromium: an auditor scrubs back to the first event."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.browser import chromium

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_an_auditor_scrubs_the_replay_slider_back_in_time(server: RunningServer) -> None:
    embedded: Any = server.embedded
    grid = embedded.jurisdiction.grids()[0].id
    center = embedded.jurisdiction.centers_for(grid)[0]
    for i in range(2):
        made = httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
            "source": "hotline", "category": "noise", "grid": grid, "description": f"case {i}"})
        assert made.status_code == 201
    first = made.json()["id"]
    assert httpx.post(f"{server.url}/api/incidents/{first}/accept", headers=server.headers,
                      json={}).status_code == 200
    auditor = embedded.tokens.issue("replayer", "auditor", None)
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{server.url}/replay?center={center}#token={auditor}")
        page.wait_for_selector("#open-at tr", timeout=10_000)
        assert page.locator("#open-at tr").count() == 2
        assert "accepted: 1" in page.inner_text("#counts-at")
        page.eval_on_selector("#scrubber", "el => { el.value = 0; "
                              "el.dispatchEvent(new Event('input')); }")
        page.wait_for_function("document.querySelectorAll('#open-at tr').length === 1",
                               timeout=10_000)
        assert "reported: 1" in page.inner_text("#counts-at")
        page.click("#open-at tr")
        page.wait_for_selector("#history li", timeout=10_000)
        assert "Reported" in page.inner_text("#history")
