"""Issue #14 in headless Chromium: the countdown of a case waiting to be accepted, the
assessment panel's ranking and trend chart, and the supervision-order panel, in both languages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.test_browser_console import browser  # noqa: F401  (the Chromium fixture)

pytestmark = pytest.mark.browser
GRID = "130706001001001"  # township 130706001, district 130706
OTHER_GRID = "130706200001001"  # township 130706200


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        yield client


def open_console(chromium: Any, server: RunningServer, center: str, lang: str = "en") -> Any:
    page = chromium.new_page()
    page.add_init_script(f"localStorage.setItem('linkage.lang', '{lang}')")
    login = f"#token={server.token}" if server.token else ""
    page.goto(f"{server.url}/?center={center}{login}")
    page.wait_for_selector("#conn-status[data-state=open]", timeout=15000)
    return page


def test_a_case_waiting_to_be_accepted_shows_its_countdown(
    browser: Any, server: RunningServer, client: httpx.Client,  # noqa: F811
) -> None:
    page = open_console(browser, server, "130706001")
    incident = client.post("/api/incidents", json={
        "source": "hotline", "category": "pothole", "grid": GRID,
        "description": "waiting to be accepted"}).json()
    row = f'#open-list [data-id="{incident["id"]}"]'
    page.wait_for_selector(row, timeout=15000)
    # The shipped policy's default row: 30 minutes to accept.
    page.wait_for_function(
        f"document.querySelector('{row} .due-rel').textContent.startsWith('to accept in')",
        timeout=15000)
    assert "29" in page.inner_text(f"{row} .due-rel") or "30" in page.inner_text(f"{row} .due-rel")
    page.click("#lang-toggle")
    page.wait_for_function(
        f"document.querySelector('{row} .due-rel').textContent.startsWith('待受理')",
        timeout=5000)
    page.close()


def loop(client: httpx.Client, grid: str, rating: int, late_by: timedelta | None = None) -> None:
    i = client.post("/api/incidents", json={"source": "hotline", "category": "pothole",
                                            "grid": grid, "description": "d"}).json()["id"]
    for action, body in [("accept", {}),
                         ("dispatch", {"assignee": {"kind": "department", "id": "water_affairs"}}),
                         ("acknowledge", {}), ("resolve", {"outcome": "fixed"}),
                         ("return-visit", {"satisfaction": rating})]:
        assert client.post(f"/api/incidents/{i}/{action}", json=body).status_code == 200


def test_the_assessment_panel_ranks_units_and_draws_a_trend_and_updates_live(
    browser: Any, server: RunningServer, client: httpx.Client,  # noqa: F811
) -> None:
    loop(client, GRID, 5)
    loop(client, OTHER_GRID, 2)  # dissatisfied: reopened, a lower score
    page = open_console(browser, server, "130700")
    page.wait_for_selector("#assessment-ranking tbody tr[data-unit]", timeout=15000)
    ranked = page.eval_on_selector_all(
        "#assessment-ranking tbody tr[data-unit]",
        "rows => rows.map(r => [r.dataset.unit, r.querySelector('.score').textContent])")
    units = [u for u, _ in ranked]
    assert units.index("130706001") < units.index("130706200")
    scores = dict(ranked)
    assert float(scores["130706001"]) > float(scores["130706200"])
    assert page.locator("#assessment-trend circle").count() >= 1
    assert "Assessment ranking" in page.inner_text("#assessment-panel")
    # Live: another case moves the ranking's intake without a reload.
    before = page.inner_text("#assessment-ranking")
    loop(client, OTHER_GRID, 5)
    page.wait_for_function(
        "text => document.querySelector('#assessment-ranking').innerText !== text",
        arg=before, timeout=20000)
    page.click("#lang-toggle")
    page.wait_for_function(
        "document.querySelector('#assessment-panel h2').textContent === '考核排名'", timeout=5000)
    page.close()


def test_the_orders_panel_shows_an_order_to_its_addressee_and_its_issuer(
    browser: Any, server: RunningServer, client: httpx.Client,  # noqa: F811
) -> None:
    deadline = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    order = client.post("/api/orders", json={"issuer": "130706", "addressee": "130706001",
                                             "deadline": deadline, "note": "clear the drain"})
    assert order.status_code == 201, order.text
    page = open_console(browser, server, "130706")
    page.wait_for_selector(f'#orders-list li[data-id="{order.json()["id"]}"]', timeout=15000)
    item = page.locator(f'#orders-list li[data-id="{order.json()["id"]}"]')
    assert item.get_attribute("data-role") == "issuer"
    assert "clear the drain" in item.inner_text() and "left" in item.inner_text()
    page.select_option("#center-select", "130706001")
    page.wait_for_selector('#orders-list li[data-role="addressee"]', timeout=15000)
    page.close()
