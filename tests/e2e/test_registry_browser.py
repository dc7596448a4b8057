"""The console's registry panel in a browser: the township's population updates live as a
resident is registered, its grids with no worker show as a warning, both languages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from domain.registry import id_check_digit
from tests.conftest import RunningServer, start_server
from tests.e2e.browser import chromium

pytestmark = pytest.mark.e2e

TOWNSHIP, GRID = "130706001", "130706001001001"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("registry-browser") / "data")
    yield running
    running.stop()


def test_the_population_panel_and_the_unstaffed_warning(server: RunningServer) -> None:
    embedded: Any = server.embedded
    officer = embedded.tokens.issue("t1", "township_officer", TOWNSHIP)
    headers = {"Authorization": f"Bearer {officer}"}
    released = httpx.post(f"{server.url}/api/registry/workers/gw-130706001001002/release",
                          headers=headers, json={"reason": "resigned"})
    assert released.status_code == 200, released.text
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script("localStorage.setItem('linkage.lang', 'en')")
        page.goto(f"{server.url}/?center={TOWNSHIP}#token={officer}")
        page.wait_for_selector("#conn-status[data-state=open]", timeout=15000)
        page.wait_for_selector("#population [data-field=total]", timeout=15000)
        assert page.inner_text("#population [data-field=total] .count-value") == "0"
        page.wait_for_selector("#unstaffed:not([hidden])", timeout=15000)
        assert "130706001001002" in page.inner_text("#unstaffed")
        assert "Grids with no grid worker" in page.inner_text("#unstaffed")
        base = "13070619700707070"
        made = httpx.post(f"{server.url}/api/residents", headers=headers, json={
            "id_number": base + id_check_digit(base), "name": "浏览器", "phone": "13511112222",
            "household": "1号", "kind": "floating", "grid": GRID,
            "arrived": datetime.now(UTC).date().isoformat()})
        assert made.status_code == 201, made.text
        page.wait_for_function(
            "document.querySelector('#population [data-field=total] .count-value')"
            ".textContent === '1'", timeout=15000)
        assert page.inner_text("#population [data-field=arrivals] .count-value") == "1"
        assert page.inner_text("#population [data-field=floating] .count-value") == "1"
        assert "Residents" in page.inner_text("#population")
        page.click("#lang-toggle")
        page.wait_for_function(
            "document.querySelector('#population').innerText.includes('实有人口')", timeout=5000)
        assert "无网格员的网格" in page.inner_text("#unstaffed")
        assert "13511112222" not in page.content()
        page.close()


def test_the_unstaffed_grids_are_announced_for_the_map(server: RunningServer) -> None:
    embedded: Any = server.embedded
    officer = embedded.tokens.issue("t1", "township_officer", TOWNSHIP)
    released = httpx.post(f"{server.url}/api/registry/workers/gw-130706001001005/release",
                          headers={"Authorization": f"Bearer {officer}"},
                          json={"reason": "moved away"})
    assert released.status_code == 200, released.text
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script(
            "window.unstaffed = []; document.addEventListener('linkage:unstaffed', "
            "(ev) => window.unstaffed.push(ev.detail));")
        page.goto(f"{server.url}/?center={TOWNSHIP}#token={officer}")
        page.wait_for_function("window.unstaffed.length > 0", timeout=15000)
        detail = page.evaluate("window.unstaffed[0]")
        assert detail["center"] == TOWNSHIP and "130706001001005" in detail["grids"]
        # the map outlines the unstaffed grid, and only the unstaffed ones
        page.wait_for_selector('#map path[data-grid="130706001001005"].unstaffed', timeout=15000)
        marked = page.eval_on_selector_all("#map path.map-grid.unstaffed",
                                           "ps => ps.map(p => p.dataset.grid)")
        assert sorted(marked) == sorted(g for g in detail["grids"] if g in page.eval_on_selector_all(
            "#map path.map-grid", "ps => ps.map(p => p.dataset.grid)"))
        assert "130706001001001" not in marked
        assert "No grid worker" in page.inner_text(".map-legend")
        page.close()
    # a worker assigned as lead staffs it again: the next page does not mark it
    headers = {"Authorization": f"Bearer {officer}"}
    appointed = httpx.post(f"{server.url}/api/registry/workers", headers=headers, json={
        "id": "gw-map-1", "name": {"zh": "新网格员", "en": "New Worker"}, "employment": "part_time"})
    assert appointed.status_code == 201, appointed.text
    assigned = httpx.post(f"{server.url}/api/registry/workers/gw-map-1/assign", headers=headers,
                          json={"grid": "130706001001005", "lead": True})
    assert assigned.status_code == 200, assigned.text
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script(
            "window.unstaffed = []; document.addEventListener('linkage:unstaffed', "
            "(ev) => window.unstaffed.push(ev.detail));")
        page.add_init_script("localStorage.setItem('linkage.lang', 'zh-CN')")
        page.goto(f"{server.url}/?center={TOWNSHIP}#token={officer}")
        page.wait_for_function("window.unstaffed.length > 0", timeout=15000)
        page.wait_for_selector("#map path.map-grid", timeout=15000)
        page.wait_for_timeout(300)
        assert "130706001001005" not in page.evaluate("window.unstaffed[0]")["grids"]
        assert page.locator('#map path[data-grid="130706001001005"].unstaffed').count() == 0
        assert "无网格员" in page.inner_text(".map-legend")
        page.close()
