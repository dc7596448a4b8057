"""The replay page in headless Chromium: an auditor scrubs back to the first event; the page speaks
zh-CN with times in Asia/Shanghai, steps by incident events with the alerts between them grouped,
and an officer's token gets a translated refusal."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.browser import chromium

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _two_cases(server: RunningServer) -> tuple[str, str]:
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
    return center, grid


def test_an_auditor_scrubs_the_replay_slider_back_in_time(server: RunningServer) -> None:
    center, _ = _two_cases(server)
    embedded: Any = server.embedded
    auditor = embedded.tokens.issue("replayer", "auditor", None)
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script("localStorage.setItem('linkage.lang', 'en')")
        page.goto(f"{server.url}/replay?center={center}#token={auditor}")
        page.wait_for_selector("#open-at tr", timeout=10_000)
        assert page.locator("#open-at tr").count() == 2
        assert "Accepted: 1" in page.inner_text("#counts-at")
        page.eval_on_selector("#scrubber", "el => { el.value = 0; "
                              "el.dispatchEvent(new Event('input')); }")
        page.wait_for_function("document.querySelectorAll('#open-at tr').length === 1",
                               timeout=10_000)
        assert "Reported: 1" in page.inner_text("#counts-at")
        page.click("#open-at tr")
        page.wait_for_selector("#history li", timeout=10_000)
        assert "Reported" in page.inner_text("#history")


def test_the_replay_speaks_chinese_in_shanghai_time_and_groups_alerts(server: RunningServer) -> None:
    center, grid = _two_cases(server)
    camera = f"cam-{grid}-1"
    alerts = [{"id": f"r{i}", "camera": camera, "label": "person", "score": 0.7,
               "start_time": time.time() - 30 + i} for i in range(5)]
    response = httpx.post(f"{server.url}/api/ingest/alerts", json={"alerts": alerts},
                          headers=server.feed_headers)
    assert response.status_code == 200, response.text
    embedded: Any = server.embedded
    auditor = embedded.tokens.issue("replayer", "auditor", None)
    events = httpx.get(f"{server.url}/api/audit/centers/{center}/events",
                       headers={"Authorization": f"Bearer {auditor}"}).json()
    incident_events = [e for e in events if e["aggregate"] == "Incident"]
    assert len(incident_events) == 3 and len(events) > 3
    last = datetime.fromisoformat(events[-1]["at"])
    shanghai = last.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M:%S")
    utc = last.astimezone(ZoneInfo("UTC")).strftime("%H:%M:%S")
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script("localStorage.setItem('linkage.lang', 'zh-CN')")
        page.goto(f"{server.url}/replay?center={center}#token={auditor}")
        page.wait_for_selector("#open-at tr", timeout=10_000)
        # three incident events and one step for the alerts after them
        assert page.get_attribute("#scrubber", "max") == "3"
        label = page.inner_text("#at-label")
        assert shanghai in label and utc not in label and "." not in label and "Z" not in label
        assert "告警 5 条" in page.inner_text("#event-label")
        assert "已受理: 1" in page.inner_text("#counts-at")
        assert "噪音扰民" in page.inner_text("#open-at")
        page.click("#open-at tr")
        page.wait_for_selector("#history li", timeout=10_000)
        assert "上报" in page.inner_text("#history")
        # the history sits beside the view, not below it
        history = page.locator(".r-history").bounding_box()
        table = page.locator(".r-open").bounding_box()
        assert history is not None and table is not None and history["x"] > table["x"] + table["width"] - 1
        assert page.title().startswith("审计回放")
        # UTC on request: the same moment, another clock
        page.select_option("#tz-select", "UTC")
        assert utc in page.inner_text("#at-label")


def test_an_officer_gets_a_translated_refusal(server: RunningServer) -> None:
    center, _ = _two_cases(server)
    with chromium() as browser:
        for lang, words in (("zh-CN", "无权查看审计回放"), ("en", "Not allowed")):
            page = browser.new_page()
            page.add_init_script(f"localStorage.setItem('linkage.lang', '{lang}')")
            page.goto(f"{server.url}/replay?center={center}#token={server.token}")
            page.wait_for_selector("#error:not([hidden])", timeout=10_000)
            text = page.inner_text("#error")
            assert words in text and "audit.read" not in text
            assert page.get_attribute("#error", "data-status") == "403"
            page.close()
