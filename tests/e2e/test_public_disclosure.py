"""The public disclosure (no login): handled cases and monthly figures, never a seeded name,
phone, ID number, plate or street address (also when hidden in free text), opted-out categories
never, nothing before the publish delay; cached and rate limited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from domain.registry import id_check_digit
from projections.disclosure import redact
from tests.conftest import RunningServer, start_server

pytestmark = pytest.mark.e2e

GRID = "130706001001001"
BASE = "13070619800303123"
ID_NUMBER = BASE + id_check_digit(BASE)
NAME, PHONE, PLATE, STREET = "赵公开", "13712345678", "冀G12345", "幸福路88号"
REPORTER = "钱报告"
REPORTER_PHONE = "13698765432"
SECRETS = [NAME, PHONE, ID_NUMBER, PLATE, STREET, "88号", REPORTER, REPORTER_PHONE]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("public") / "data", disclosure_delay_hours=0.0,
                           disclosure_cache=0.0, disclosure_rate=1000.0)
    yield running
    running.stop()


def act(server: RunningServer, incident: str, action: str, **body: Any) -> None:
    answer = httpx.post(f"{server.url}/api/incidents/{incident}/{action}",
                        headers=server.headers, json=body)
    assert answer.status_code == 200, (action, answer.text)


def handled_case(server: RunningServer, category: str, outcome: str) -> str:
    made = httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
        "source": "hotline", "category": category, "severity": "routine", "grid": GRID,
        "description": f"{NAME} {PHONE} reported at {STREET}",
        "reporter": {"name": REPORTER, "phone": REPORTER_PHONE}})
    assert made.status_code == 201, made.text
    incident: str = made.json()["id"]
    act(server, incident, "accept")
    act(server, incident, "dispatch", assignee={"kind": "grid_worker", "id": "gw-" + GRID},
        due="2030-01-01T00:00:00+00:00", due_reason="a far due keeps the case off the SLA alerts")
    act(server, incident, "acknowledge")
    act(server, incident, "resolve", outcome=outcome)
    act(server, incident, "return-visit", satisfaction=4)
    act(server, incident, "close")
    return incident


def test_the_feed_never_shows_personal_data_or_opted_out_categories(
        server: RunningServer) -> None:
    admin = server.embedded.tokens.issue("root", "admin", None)  # type: ignore[attr-defined]
    registered = httpx.post(f"{server.url}/api/residents",
                            headers={"Authorization": f"Bearer {admin}"},
                            json={"id_number": ID_NUMBER, "name": NAME, "phone": PHONE,
                                  "household": STREET, "kind": "permanent", "grid": GRID,
                                  "arrived": "2026-11-01"})
    assert registered.status_code == 201, registered.text
    outcome = (f"联系{NAME}（{PHONE}，身份证{ID_NUMBER}），车辆{PLATE}已挪走，{STREET}垃圾清理完毕；"
               f"{REPORTER}电话{REPORTER_PHONE}回访满意")
    handled_case(server, "garbage", outcome)
    handled_case(server, "dispute", "邻里纠纷已调解")
    feed = httpx.get(f"{server.url}/api/public/cases")  # no credentials
    assert feed.status_code == 200, feed.text
    items = feed.json()["items"]
    assert [i["category"] for i in items] == ["garbage"]  # the dispute is opted out
    assert "垃圾清理完毕" in items[0]["outcome"] and items[0]["satisfaction"] == 4
    assert items[0]["community"]["id"] == "130706001001"
    for secret in SECRETS:
        assert secret not in feed.text, secret
    page = httpx.get(f"{server.url}/public")
    assert page.status_code == 200 and "public.js" in page.text
    figures = httpx.get(f"{server.url}/api/public/figures")
    assert figures.status_code == 200
    for secret in SECRETS:
        assert secret not in figures.text


def test_the_delay_holds(server: RunningServer) -> None:
    disclosure: Any = server.embedded.services.disclosure  # type: ignore[attr-defined]
    incident = handled_case(server, "noise", "噪音已处理")
    shown = httpx.get(f"{server.url}/api/public/cases").json()["items"]
    assert any(i["category"] == "noise" for i in shown)
    disclosure.settings.delay = timedelta(hours=1)
    try:
        held = httpx.get(f"{server.url}/api/public/cases").json()
        assert held["items"] == [] and held["delay_hours"] == 1.0, incident
        # Figures wait until the month has ended and the delay passed: this month is not shown.
        months = httpx.get(f"{server.url}/api/public/figures").json()["months"]
        assert all(m["month"] != shown[0]["resolved"][:7] for m in months)
    finally:
        disclosure.settings.delay = timedelta(0)


def test_bad_paging_is_a_422_and_too_many_requests_a_429(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/api/public/cases?limit=0").status_code == 422
    assert httpx.get(f"{server.url}/api/public/cases?limit=x").status_code == 422
    disclosure: Any = server.embedded.services.disclosure  # type: ignore[attr-defined]
    saved = disclosure._limiter
    from command_center.intake import RateLimiter

    disclosure._limiter = RateLimiter(0.001, 2)
    try:
        codes = [httpx.get(f"{server.url}/api/public/figures").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        refused = httpx.get(f"{server.url}/api/public/cases")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    finally:
        disclosure._limiter = saved


@pytest.mark.parametrize("text", [
    "电话 13812345678", "+86 138-1234-5678", "0313-1234567", "身份证 11010519491231002X",
    "车牌 冀G·A1234", "京A12345", "幸福路12号", "3栋2单元501室", "Room 501", "12 Main Street",
])
def test_redaction_removes_what_looks_personal(text: str) -> None:
    digits = [c for c in redact(text) if c.isdigit()]
    assert len(digits) < 2, redact(text)


def test_monthly_figures_count_published_categories_once_the_month_is_over(
        server: RunningServer) -> None:
    from datetime import UTC, datetime

    disclosure: Any = server.embedded.services.disclosure  # type: ignore[attr-defined]
    handled_case(server, "garbage", "清理完毕")
    handled_case(server, "dispute", "已调解")
    month = datetime.now(UTC).strftime("%Y-%m")
    assert all(m["month"] != month for m in
               httpx.get(f"{server.url}/api/public/figures").json()["months"])
    saved = disclosure.clock
    disclosure.clock = lambda: datetime.now(UTC) + timedelta(days=40)  # the month has ended
    try:
        months = httpx.get(f"{server.url}/api/public/figures").json()["months"]
    finally:
        disclosure.clock = saved
    figures = next(m for m in months if m["month"] == month)["townships"]
    township = next(t for t in figures if t["id"] == "130706001")
    published = [i for i in disclosure.current().published.values()
                 if i["township"] == "130706001" and i["closed"].startswith(month)]
    shown = [i for i in published if i["category"] != "dispute"]
    assert len(shown) < len(published)  # a dispute was closed and is left out
    assert township["closed"] == len(shown) and township["rated"] == len(shown)
    assert township["mean_satisfaction"] == 4.0
