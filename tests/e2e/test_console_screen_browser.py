"""The duty officer's main screen in headless Chromium (issue #13, B): the urgency queue above the
fold, the alarm for a new major incident, the map filtering the queue, names instead of ids, and
storms as one row per burst that leaves when acknowledged."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.e2e.browser import chromium

pytestmark = pytest.mark.browser
TOWNSHIP = "130706001"
CAMERA_GRID = "130706001001001"
DEPARTMENTS = ("urban_management", "housing", "public_security", "water_affairs", "fire_rescue")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@contextmanager
def console(browser: Any, server: RunningServer, lang: str = "en", width: int = 1600,
            height: int = 1000) -> Iterator[Any]:
    """The township console, connected; fails on any page error."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(f"localStorage.setItem('linkage.lang', '{lang}')")
    page.goto(f"{server.url}/?center={TOWNSHIP}#token={server.token or ''}")
    page.wait_for_selector("#conn-status[data-state=open]", timeout=15000)
    try:
        yield page
        assert errors == []
    finally:
        page.close()


def grids(server: RunningServer) -> list[str]:
    embedded: Any = server.embedded
    return [g.id for g in embedded.jurisdiction.grids_under(TOWNSHIP)]


def report(client: httpx.Client, grid: str, category: str = "noise", severity: str = "routine",
           source: str = "hotline", description: str = "楼道噪音") -> str:
    made = client.post("/api/incidents", json={"source": source, "category": category,
                                               "severity": severity, "grid": grid,
                                               "description": description})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def dispatch(client: httpx.Client, case: str, assignee: dict[str, str], hours: float) -> None:
    assert client.post(f"/api/incidents/{case}/accept", json={}).status_code == 200
    due = (datetime.now(UTC) + timedelta(hours=hours)).isoformat()
    response = client.post(f"/api/incidents/{case}/dispatch", json={"assignee": assignee, "due": due})
    assert response.status_code == 200, response.text


def storm_time() -> float:
    """Now, moved back into the first second of its 10 s window (by at most 9 s): a burst (2 s)
    from it stays inside one 10 s window, hence one 60 s window. A burst across a window's edge
    leaves the next window under the storm threshold, which ends the storm (projections/alerts.py):
    at some seconds of the minute there would be no storm, or fewer windows, to look at."""
    now = time.time()
    return now - max(0.0, now % 10 - 1)


def burst(server: RunningServer, prefix: str, camera: str, start: float, n: int = 40) -> None:
    alerts = [{"id": f"{prefix}-{i}", "camera": camera, "label": "person", "score": 0.6,
               "start_time": start + i * 0.05} for i in range(n)]
    for i in range(0, n, 20):
        response = httpx.post(f"{server.url}/api/ingest/alerts", json={"alerts": alerts[i:i + 20]},
                              headers=server.feed_headers)
        assert response.status_code == 200, response.text


def row_ids(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("#open-list tr[data-id]", "rows => rows.map(r => r.dataset.id)"))


def test_a_major_incident_reported_while_the_console_is_open_is_first_and_raises_the_alarm(
        browser: Any, server: RunningServer) -> None:
    grid = grids(server)[0]
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        routine = [report(client, grid) for _ in range(5)]
        dispatch(client, routine[0], {"kind": "department", "id": "housing"}, hours=-1)  # overdue
        with console(browser, server) as page:
            page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 5",
                                   timeout=15000)
            page.wait_for_function("!document.querySelector('#open-list tr.alarm')", timeout=10000)
            assert not page.title().startswith("[")
            page.click("#alarm-sound")  # the officer enables sound once
            page.wait_for_selector("#alarm-sound[aria-pressed=true]")
            major = report(client, grid, category="fire_hazard", severity="major",
                           description="楼道内电动车充电起火")
            page.wait_for_selector(f'#open-list tr[data-id="{major}"].alarm', timeout=15000)
            assert row_ids(page)[0] == major
            # then the overdue case, then the unaccepted ones by their age since report
            assert row_ids(page)[1] == routine[0]
            assert row_ids(page)[2:] == routine[1:]
            assert page.title().startswith("[New major incident] (1)")
            assert page.locator("#alarm-bar").is_visible()
            page.wait_for_function("document.body.dataset.alarmPlays === '1'", timeout=5000)
            page.wait_for_function("document.getElementById('alarm-audio').played.length > 0",
                                   timeout=5000)
            # a routine case does not ring
            report(client, grid, description="another routine one")
            page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 7",
                                   timeout=15000)
            assert page.locator("#open-list tr.alarm").count() == 1
            # opening the case acknowledges it: no flash, the title is back
            page.click(f'#open-list tr[data-id="{major}"]')
            page.wait_for_function("!document.title.startsWith('[')", timeout=5000)
            page.wait_for_function("!document.querySelector('#open-list tr.alarm')", timeout=10000)
            assert not page.locator("#alarm-bar").is_visible()
            assert page.evaluate("document.body.dataset.alarmPlays") == "1"
            # another major one, accepted on another console: it stops ringing here too
            second = report(client, grid, category="fire_hazard", severity="major")
            page.wait_for_selector(f'#open-list tr[data-id="{second}"].alarm', timeout=30000)
            assert client.post(f"/api/incidents/{second}/accept", json={}).status_code == 200
            page.wait_for_function("!document.title.startsWith('[')", timeout=15000)
            page.wait_for_function("!document.querySelector('#open-list tr.alarm')", timeout=10000)


def test_a_rule_opened_incident_rings_and_the_acknowledge_button_stops_it(
        browser: Any, server: RunningServer) -> None:
    with console(browser, server) as page:
        fire = {"id": "fire-1", "camera": f"cam-{CAMERA_GRID}-1", "label": "fire", "score": 0.95,
                "start_time": time.time(), "zones": ["stairwell"]}
        response = httpx.post(f"{server.url}/api/ingest/alerts", json={"alerts": [fire]},
                              headers=server.feed_headers)
        assert response.status_code == 200, response.text
        page.wait_for_selector("#open-list tr.alarm", timeout=30000)
        title = page.title()
        assert title.startswith("[New major incident]"), title  # the rule opens it as major
        page.click("#alarm-ack")
        page.wait_for_function("!document.title.startsWith('[')", timeout=10000)
        page.wait_for_function("!document.querySelector('#open-list tr.alarm')", timeout=10000)
        # sound was never enabled: nothing played
        assert page.evaluate("document.body.dataset.alarmPlays") is None


def test_clicking_a_grid_on_the_map_filters_the_queue_and_the_map_draws_every_grid(
        browser: Any, server: RunningServer) -> None:
    every = grids(server)
    first, second = every[0], every[1]
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        in_first = {report(client, first) for _ in range(2)}
        in_second = {report(client, second) for _ in range(3)}
        report(client, second, category="fire_hazard", severity="major")
    with console(browser, server) as page:
        page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 6",
                               timeout=15000)
        drawn = page.eval_on_selector_all("#map path.map-grid", "ps => ps.map(p => p.dataset.grid)")
        assert sorted(drawn) == sorted(every)
        assert page.get_attribute(f'#map path[data-grid="{second}"]', "data-open") == "4"
        assert page.locator(f'#map .marker-major[data-grid="{second}"]').count() == 1
        page.hover(f'#map path[data-grid="{second}"]')
        tip = page.inner_text("#map-tip")
        assert "4 open" in tip and "Grid 02" in tip
        assert "Li Lei" in tip  # the grid's worker, by name from the directory
        page.click(f'#map path[data-grid="{first}"]')
        page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 2",
                               timeout=5000)
        assert set(row_ids(page)) == in_first
        assert page.input_value("#filter-grid") == first
        page.click(f'#map path[data-grid="{first}"]')  # a second click lifts the filter
        page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 6",
                               timeout=5000)
        page.select_option("#filter-severity", "major")
        page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 1",
                               timeout=5000)
        page.select_option("#filter-severity", "")
        page.select_option("#filter-grid", second)
        page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 4",
                               timeout=5000)
        assert set(row_ids(page)) - in_second != set()  # the major one is there too
        assert "selected" in (page.get_attribute(f'#map path[data-grid="{second}"]', "class") or "")


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def raw_ids(text: str) -> list[str]:
    found = UUID.findall(text) + re.findall(r"cam-[\w-]+", text) + SNAKE.findall(text)
    found += [d for d in DEPARTMENTS if d in text] + re.findall(r"department:\S+", text)
    return found


def test_no_raw_ids_on_the_main_screen(browser: Any, server: RunningServer) -> None:
    every = grids(server)
    cases = [("fire_hazard", "major", "grid_worker"), ("road_damage", "routine", "hotline"),
             ("garbage", "routine", "wechat"), ("illegal_parking", "routine", "resident"),
             ("water_leak", "routine", "grid_worker"), ("dispute", "routine", "hotline"),
             ("public_security", "major", "camera"), ("noise", "routine", "hotline")]
    assignees = [{"kind": "department", "id": "urban_management"},
                 {"kind": "party", "id": "xhy_property"},  # registered, serves the district (#15)
                 {"kind": "grid_worker", "id": "gw-7"},
                 {"kind": "department", "id": "water_affairs"}]
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        for i, (category, severity, source) in enumerate(cases):
            case = report(client, every[i % 5], category, severity, source)
            if i % 2:
                dispatch(client, case, assignees[i % 4], hours=i - 3)
    now = storm_time()
    singles = [{"id": f"one-{i}", "camera": f"cam-{CAMERA_GRID}-2", "label": label, "score": 0.7,
                "start_time": now - 100 + i}
               for i, label in enumerate(["person", "car", "bicycle", "dog"])]
    singles.append({"id": "plate", "camera": f"cam-{CAMERA_GRID}-2", "label": "car",
                    "plate": "冀G12345", "score": 0.8, "start_time": now - 50})
    # fire in a stairwell: the rule opens an incident (its actor in the feed is the rule)
    singles.append({"id": "fire", "camera": f"cam-{CAMERA_GRID}-1", "label": "fire",
                    "score": 0.95, "start_time": now - 20, "zones": ["stairwell"]})
    response = httpx.post(f"{server.url}/api/ingest/alerts", json={"alerts": singles},
                          headers=server.feed_headers)
    assert response.status_code == 200, response.text
    burst(server, "storm", f"cam-{CAMERA_GRID}-1", now)
    for lang in ("en", "zh-CN"):
        with console(browser, server, lang=lang) as page:
            page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 9",
                                   timeout=15000)
            page.wait_for_selector("#storms .storm", timeout=15000)
            page.wait_for_selector("#alert-list li[data-alert]", timeout=15000)
            page.wait_for_selector("#map path.map-grid", timeout=15000)
            page.wait_for_function("document.querySelectorAll('#feed li[data-n]').length >= 9",
                                   timeout=15000)
            page.click("#storms button[data-toggle]")  # the storm's windows, expanded
            page.wait_for_selector("#storms .storm-window")
            # What a person sees: innerText leaves out closed <details> folds and hidden parts.
            text = page.evaluate("document.body.innerText")
            assert raw_ids(text) == [], raw_ids(text)
            assert "Grid" in text or "网格" in text  # names are there, not only blanks
            rule = ("Fire or smoke detected in a watched zone" if lang == "en"
                    else "烟火告警：重点区域检测到烟火")
            assert rule in page.inner_text("#feed")  # the rule that opened the case, by its description
            bureau = "City Water Affairs Bureau" if lang == "en" else "市水务局"
            page.wait_for_function(f"document.body.innerText.includes({bureau!r})", timeout=10000)
            footer = page.inner_text("footer")
            assert ("Connected" in footer) if lang == "en" else ("已连接" in footer)
            # the ids are in the details fold, for whoever needs them
            page.click("footer details summary")
            assert TOWNSHIP in page.inner_text("footer")


def test_storm_windows_merge_into_one_row_that_leaves_when_acknowledged(
        browser: Any, server: RunningServer) -> None:
    now = storm_time()
    burst(server, "live", f"cam-{CAMERA_GRID}-1", now)
    # a burst whose windows ended minutes ago: still in the view, no longer on the active list
    burst(server, "old", f"cam-{CAMERA_GRID}-2", now - 400)
    deadline = time.monotonic() + 15
    while True:  # the views are folded asynchronously: wait for all 80 alerts
        view = httpx.get(f"{server.url}/api/centers/{TOWNSHIP}/view", headers=server.headers).json()
        if view["alert_counts"]["raised"] == 80 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    active = [s for s in view["storms"].values() if s["active"]]
    live_windows = [s for s in active if s["start_ts"] >= now - 70]
    assert len(live_windows) >= 2 and len(active) > len(live_windows)
    with console(browser, server) as page:
        page.wait_for_selector("#storms .storm", timeout=15000)
        # one row once the directory tells which grid the camera watches
        page.wait_for_function("document.querySelectorAll('#storms .storm').length === 1", timeout=10000)
        page.wait_for_timeout(300)
        assert page.locator("#storms .storm").count() == 1
        row = page.locator("#storms .storm")
        assert row.get_attribute("data-windows") == str(len(live_windows))
        row.locator("button[data-toggle]").click()
        assert page.locator("#storms .storm-window").count() == len(live_windows)
        unack = int(page.get_attribute("#alerts-unack", "data-n") or "0")
        row.locator("button[data-burst]").click()
        page.wait_for_selector("#storms .storm", state="detached", timeout=10000)
        page.wait_for_function(f"Number(document.getElementById('alerts-unack').dataset.n) <= {unack - 40}",
                               timeout=10000)
        assert page.locator("#storms").is_hidden()
    # the view marks each window acknowledged with its count: gone from every console
    view = httpx.get(f"{server.url}/api/centers/{TOWNSHIP}/view", headers=server.headers).json()
    for window in live_windows:
        storm = view["storms"][window["key"]]
        assert storm["acked"] == storm["count"] == window["count"]
    with console(browser, server) as other:
        other.wait_for_selector("#alert-list li", timeout=15000)
        other.wait_for_timeout(500)
        assert other.locator("#storms .storm").count() == 0
    # one more alert in the live window brings the burst back
    burst(server, "more", f"cam-{CAMERA_GRID}-1", now + 1, n=1)
    with console(browser, server) as again:
        again.wait_for_selector("#storms .storm", timeout=15000)


@pytest.mark.parametrize("size", [(1600, 1000), (1920, 1080)], ids=["1600x1000", "1920x1080"])
def test_the_queue_is_visible_without_scrolling(browser: Any, server: RunningServer,
                                                size: tuple[int, int]) -> None:
    every = grids(server)
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        for i in range(60):
            report(client, every[i % len(every)])
    burst(server, "fold", f"cam-{CAMERA_GRID}-1", storm_time())
    width, height = size
    with console(browser, server, width=width, height=height) as page:
        page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 60",
                               timeout=15000)
        major = httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
            "source": "hotline", "category": "fire_hazard", "severity": "major", "grid": every[0],
            "description": "major"}).json()["id"]
        page.wait_for_selector(f'#open-list tr[data-id="{major}"].alarm', timeout=15000)
        page.wait_for_timeout(300)  # one frame for the panel to fit under the alarm bar
        assert page.evaluate("window.scrollY") == 0
        for selector in (".panel-open", "#open-list tr:first-child", ".panel-map"):
            box = page.locator(selector).bounding_box()
            assert box is not None, selector
            assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
            assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= height, (selector, box)
        rows_seen = page.evaluate("""() => {
            const wrap = document.querySelector('.panel-open .table-wrap').getBoundingClientRect();
            return [...document.querySelectorAll('#open-list tr')]
                .filter(r => r.getBoundingClientRect().bottom <= wrap.bottom).length; }""")
        assert rows_seen >= 12


def test_the_page_orders_its_rows_by_the_rule_with_its_clock(browser: Any, server: RunningServer) -> None:
    grid = grids(server)[0]
    department = {"kind": "department", "id": "housing"}
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        resolved = report(client, grid, description="resolved, awaiting the return visit")
        dispatch(client, resolved, department, hours=-30)
        for action, body in (("acknowledge", {}), ("resolve", {"outcome": "fixed"})):
            assert client.post(f"/api/incidents/{resolved}/{action}", json=body).status_code == 200
        later = report(client, grid, description="due in 5 h")
        dispatch(client, later, department, hours=5)
        sooner = report(client, grid, description="due in 1 h")
        dispatch(client, sooner, department, hours=1)
        waiting_long = report(client, grid, description="waiting long")
        time.sleep(1.1)
        waiting_short = report(client, grid, description="waiting short")
        # due 30 s from now: the server has no clock, the page moves it up once the time passes
        soon_overdue = report(client, grid, description="overdue soon")
        dispatch(client, soon_overdue, department, hours=30 / 3600)
        major = report(client, grid, category="fire_hazard", severity="major")
    with console(browser, server) as page:
        page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 7",
                               timeout=15000)
        before = row_ids(page)
        assert before[0] == major and before[1:3] == [waiting_long, waiting_short]
        assert before.index(soon_overdue) < before.index(sooner) < before.index(later)
        assert before[-1] == resolved  # past its due time, but waiting for the return visit
        # every row counts down to its current step's SLA due time (#14): a case not accepted yet
        # to accepting it, a dispatched one to its acknowledgement, a resolved one to its visit
        assert "to accept in" in page.inner_text(f'#open-list tr[data-id="{waiting_long}"] .c-due')
        assert "to acknowledge in" in page.inner_text(f'#open-list tr[data-id="{later}"] .c-due')
        assert "return visit in" in page.inner_text(f'#open-list tr[data-id="{resolved}"] .c-due')
        page.wait_for_function(f"""document.querySelector('#open-list tr[data-id="{soon_overdue}"]')
                                   .classList.contains('overdue')""", timeout=90000, polling=1000)
        after = row_ids(page)
        assert after[:2] == [major, soon_overdue]
        assert after[2:] == [waiting_long, waiting_short, sooner, later, resolved]
        # Past the accept time the page still keeps an unaccepted case in band 1 (by report time),
        # not overdue: "overdue" is for cases being worked (PROTOCOL §3), as on the server.
        queue = httpx.get(f"{server.url}/api/centers/{TOWNSHIP}/view",
                          headers=server.headers).json()["queue"]
        # The noise rule counts working hours only: reported after 15:30 Beijing time (or on a
        # weekend) the 2 h accept time ends the next working morning, past `later`'s 5 h due time.
        # So the clock is set past both the accept time and `sooner`'s due time, and `later` is
        # overdue (band 0, after `sooner` by due time) exactly when its due time is passed too.
        def parse(value: str) -> datetime:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        at = max(parse(queue[waiting_long]["step_due"]), parse(queue[sooner]["due"])) + timedelta(minutes=1)
        later_overdue = parse(queue[later]["due"]) < at
        late = page.evaluate("""async ([items, at]) => {
            const q = await import('/static/queue.js');
            return q.ordered(items, at).map((k) => [k.inc.id, k.band, k.overdue, k.accepting]); }""",
                             [list(queue.values()), at.timestamp() * 1000])
        expected = [major, soon_overdue, sooner, *([later] if later_overdue else []), waiting_long,
                    waiting_short, *([] if later_overdue else [later]), resolved]
        assert [row[0] for row in late] == expected
        assert [row[1:] for row in late if row[0] in (waiting_long, waiting_short)] == [
            [1, False, True], [1, False, True]]
        assert [row[1:3] for row in late if row[0] in (soon_overdue, sooner)] == [[0, True], [0, True]]
        # filters by status and assignee
        page.select_option("#filter-status", "reported")
        page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 3",
                               timeout=5000)
        page.select_option("#filter-status", "")
        page.select_option("#filter-assignee", "department:housing")
        page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 4",
                               timeout=5000)
        page.click("#filter-clear")
        page.wait_for_function("document.querySelectorAll('#open-list tr[data-id]').length === 7",
                               timeout=5000)
        # A case with no due time left (visited, waiting to be closed) shows the time since report.
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
            assert client.post(f"/api/incidents/{resolved}/return-visit",
                               json={"satisfaction": 5, "comment": "ok"}).status_code == 200
        page.wait_for_function(f"""(document.querySelector('#open-list tr[data-id="{resolved}"] .c-due')
                                   || {{}}).innerText?.includes('waiting')""", timeout=15000)


def test_alert_actions_open_forms_in_the_page_prefilled_in_the_users_language(
        browser: Any, server: RunningServer) -> None:
    now = time.time()
    alerts = [{"id": f"f{i}", "camera": f"cam-{CAMERA_GRID}-2", "label": label, "score": 0.7,
               "start_time": now - 60 + i} for i, label in enumerate(["person", "car"])]
    response = httpx.post(f"{server.url}/api/ingest/alerts", json={"alerts": alerts},
                          headers=server.feed_headers)
    assert response.status_code == 200, response.text
    with console(browser, server, lang="zh-CN") as page:
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.wait_for_function("document.querySelectorAll('#alert-list li[data-alert]').length === 2",
                               timeout=15000)
        person = page.locator("#alert-list li[data-alert]", has_text="人员")
        person.locator("button[data-action=create-incident]").click()
        page.wait_for_selector("#alert-form-dialog[open]")
        assert page.input_value("#alert-form-category") == "public_security"
        assert page.input_value("#alert-form-severity") == "routine"
        description = page.input_value("#alert-form-description")
        assert description.startswith("人员告警") and "摄像头" in description
        page.select_option("#alert-form-severity", "major")
        page.click("#alert-form-submit")
        page.wait_for_selector("#alert-form-dialog:not([open])", state="attached", timeout=10000)
        page.wait_for_selector("#open-list tr.major", timeout=15000)
        assert "治安" in page.inner_text("#open-list tr.major")
        car = page.locator("#alert-list li[data-alert]", has_text="车辆")
        car.locator("button[data-action=dismiss]").click()
        page.wait_for_selector("#alert-form-dialog[open]")
        assert page.input_value("#alert-form-reason") == "误报"
        page.fill("#alert-form-reason", "")
        page.click("#alert-form-submit")  # an empty reason is refused in the form
        assert "请填写" in page.inner_text("#alert-form-error")
        page.fill("#alert-form-reason", "树影晃动 误报")
        page.click("#alert-form-submit")
        page.wait_for_function("document.querySelectorAll('#alert-list li[data-alert]').length === 0",
                               timeout=15000)
        assert dialogs == []  # no confirm() or prompt()


def test_simultaneous_bursts_in_two_grids_are_two_rows(browser: Any, server: RunningServer) -> None:
    now = storm_time()
    other_grid = grids(server)[1]
    burst(server, "here", f"cam-{CAMERA_GRID}-1", now)
    burst(server, "there", f"cam-{other_grid}-1", now)
    with console(browser, server) as page:
        page.wait_for_function("document.querySelectorAll('#storms .storm').length === 2", timeout=15000)
        page.wait_for_timeout(300)
        assert page.locator("#storms .storm").count() == 2
        places = page.eval_on_selector_all("#storms .storm .storm-where", "els => els.map(e => e.textContent)")
        assert any("Grid 01" in p for p in places) and any("Grid 02" in p for p in places)
