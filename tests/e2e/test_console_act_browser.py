"""The duty officer's console as a working tool, in headless Chromium, through the page only:
it opens on the user's own center, the whole closed loop is done from the drawer (the officer and
the department, each from their own login link), a 409 is shown and the drawer refreshes, and the
keyboard works."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, start_server
from tests.e2e.browser import chromium

pytestmark = pytest.mark.browser

TOWNSHIP, GRID = "130706001", "130706001001001"
HOUSING = "City Housing and Construction Bureau · Department"
WAIT = 15000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("act") / "data")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


def token(server: RunningServer, user: str, role: str, center: str | None, **claims: str) -> str:
    embedded: Any = server.embedded
    return str(embedded.tokens.issue(user, role, center, **claims))


def console(browser: Any, server: RunningServer, tok: str, errors: list[str],
            lang: str = "en") -> Any:
    """A console page opened from the plain login link (no ?center=)."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(f"localStorage.setItem('linkage.lang', '{lang}')")
    page.goto(f"{server.url}/#token={tok}")
    return page


def report(server: RunningServer, category: str = "water_leak", description: str = "leak") -> str:
    made = httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
        "source": "hotline", "category": category, "grid": GRID, "description": description})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def status_is(page: Any, text: str) -> None:
    page.wait_for_function(
        "t => (document.querySelector('#detail-body [data-field=status] dd') || {}).textContent === t",
        arg=text, timeout=WAIT)


def act(page: Any, action: str) -> None:
    page.click(f'#detail-actions button[data-action="{action}"]')


def submit(page: Any) -> None:
    page.click("#act-form button[type=submit]")


def test_a_township_officer_lands_on_their_township_connected(browser: Any,
                                                                server: RunningServer) -> None:
    errors: list[str] = []
    page = console(browser, server, token(server, "t-land", "township_officer", TOWNSHIP), errors)
    page.wait_for_selector("#conn-status[data-state=open]", timeout=WAIT)
    assert page.eval_on_selector("#center-select", "s => s.value") == TOWNSHIP
    options = page.eval_on_selector_all("#center-select option", "os => os.map(o => o.value)")
    assert options == [TOWNSHIP]  # only what the officer may watch
    assert errors == []
    page.close()


def test_a_center_the_user_may_not_watch_is_refused_with_a_reason(browser: Any,
                                                                  server: RunningServer) -> None:
    errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script("localStorage.setItem('linkage.lang', 'zh-CN')")
    tok = token(server, "t-refused", "township_officer", TOWNSHIP)
    page.goto(f"{server.url}/?center=130700#token={tok}")
    page.wait_for_selector("#conn-status[data-state=refused]", timeout=WAIT)
    banner = page.inner_text("#banner")
    assert "您无权查看“张家口市”的控制台" in banner and "城镇街道" in banner
    assert page.evaluate("window.linkageConsole.state.retryTimer") is None  # no retrying
    # The refused center is shown but not selectable; choosing the officer's own connects.
    assert page.eval_on_selector_all("#center-select option",
                                     "os => os.map(o => [o.value, o.disabled])") == [
        ["130700", True], [TOWNSHIP, False]]
    page.select_option("#center-select", TOWNSHIP)
    page.wait_for_selector("#conn-status[data-state=open]", timeout=WAIT)
    assert page.is_hidden("#banner")
    assert errors == []
    page.close()


def test_the_whole_loop_from_the_console(browser: Any, server: RunningServer) -> None:
    errors: list[str] = []
    officer = console(browser, server, token(server, "t-loop", "township_officer", TOWNSHIP),
                      errors)
    officer.wait_for_selector("#conn-status[data-state=open]", timeout=WAIT)
    case = report(server, description="burst pipe in the stairwell")
    row = f'#open-list tr[data-id="{case}"]'
    officer.wait_for_selector(row, timeout=WAIT)  # appears without reload
    officer.click(row)
    officer.wait_for_selector('#detail-actions button[data-action="accept"]', timeout=WAIT)
    act(officer, "accept")
    status_is(officer, "Accepted")

    def dispatch_to_housing() -> None:
        act(officer, "dispatch")
        officer.select_option("#act-assignee", label=HOUSING)
        assert officer.input_value("#act-due")  # prefilled
        submit(officer)
        status_is(officer, "Dispatched")
        officer.wait_for_function(
            "id => (document.querySelector(`#open-list tr[data-id='${id}'] .c-status`) || {})"
            ".textContent?.startsWith('Dispatched')", arg=case, timeout=WAIT)

    dispatch_to_housing()

    department = console(browser, server,
                         token(server, "h-loop", "department", None, department="housing"), errors)

    def handle() -> None:
        department.wait_for_selector("#conn-status[data-state=tasks]", timeout=WAIT)
        department.click("#tasks-refresh")
        department.wait_for_selector(row, timeout=WAIT)
        department.click(row)
        department.wait_for_selector('#detail-actions button[data-action="acknowledge"]',
                                     timeout=WAIT)
        act(department, "acknowledge")
        status_is(department, "Acknowledged")
        act(department, "resolve")
        department.fill("#act-outcome", "pipe replaced")
        submit(department)
        status_is(department, "Resolved")

    handle()
    status_is(officer, "Resolved")  # the officer's drawer follows the live deltas

    def return_visit(rating: int, then: str) -> None:
        act(officer, "return-visit")
        officer.check(f"#act-rating-{rating}")
        officer.fill("#act-comment", f"rated {rating}")
        submit(officer)
        status_is(officer, then)

    # A dissatisfied resident (1-2): the case goes back to the same department at once (#14);
    # the officer can no longer close it.
    return_visit(2, "Dispatched")
    officer.wait_for_function(
        "() => { const shown = [...document.querySelectorAll('#detail-actions button[data-action]')]"
        ".map(b => b.dataset.action); return shown.length > 0 && !shown.includes('close'); }",
        timeout=WAIT)
    handle()
    status_is(officer, "Resolved")
    return_visit(5, "Visited")
    act(officer, "close")
    submit(officer)
    status_is(officer, "Closed")

    server_timeline = httpx.get(f"{server.url}/api/incidents/{case}",
                                headers=server.headers).json()["timeline"]
    officer.wait_for_function(
        "n => document.querySelectorAll('#detail-timeline .tl-item').length === n",
        arg=len(server_timeline), timeout=WAIT)
    shown = officer.eval_on_selector_all(
        "#detail-timeline .tl-item",
        "items => items.map(li => [...li.classList].find(c => c.startsWith('ev-')).slice(3))")
    assert shown == [event["type"] for event in server_timeline]
    assert [e["type"] for e in server_timeline].count("ReturnVisited") == 2
    assert errors == []
    officer.close()
    department.close()


def test_a_conflict_is_shown_and_the_drawer_refreshes(browser: Any,
                                                      server: RunningServer) -> None:
    errors: list[str] = []
    page = console(browser, server, token(server, "t-409", "township_officer", TOWNSHIP), errors)
    page.wait_for_selector("#conn-status[data-state=open]", timeout=WAIT)
    case = report(server, description="conflict")
    page.wait_for_selector(f'#open-list tr[data-id="{case}"]', timeout=WAIT)
    page.click(f'#open-list tr[data-id="{case}"]')
    page.wait_for_selector('#detail-actions button[data-action="reject"]', timeout=WAIT)
    act(page, "reject")
    page.fill("#act-reason", "not a governance matter")
    # Hold this page's reads of the case, so what it shows stays what the officer saw.
    held: list[Any] = []
    hold = {"on": True}

    def route(r: Any) -> None:
        if hold["on"] and r.request.method == "GET":
            held.append(r)
        else:
            r.continue_()

    page.route(f"**/api/incidents/{case}", route)
    other = httpx.post(f"{server.url}/api/incidents/{case}/accept", headers=server.headers,
                       json={})  # the second officer (city), first
    assert other.status_code == 200
    submit(page)
    page.wait_for_function("() => !!document.querySelector('#act-form button[disabled]') || "
                           "!document.querySelector('#act-form')", timeout=WAIT)
    hold["on"] = False
    for r in held:
        r.continue_()
    page.wait_for_selector("#act-message", timeout=WAIT)
    page.wait_for_function(
        "() => document.querySelector('#act-message').textContent.includes('Accepted')",
        timeout=WAIT)
    message = page.inner_text("#act-message")
    assert "Reported" in message and "Accepted" in message
    status_is(page, "Accepted")
    actions = page.eval_on_selector_all("#detail-actions button[data-action]",
                                        "bs => bs.map(b => b.dataset.action)")
    assert "accept" not in actions and "dispatch" in actions
    after = httpx.get(f"{server.url}/api/incidents/{case}", headers=server.headers).json()
    assert after["status"] == "accepted"  # the stale reject was refused
    assert errors == []
    page.close()


def test_the_keyboard_drives_the_queue_and_the_drawer(browser: Any,
                                                      server: RunningServer) -> None:
    errors: list[str] = []
    page = console(browser, server, token(server, "t-keys", "township_officer", TOWNSHIP), errors)
    page.wait_for_selector("#conn-status[data-state=open]", timeout=WAIT)
    case = report(server, category="noise", description="keys")
    page.wait_for_selector(f'#open-list tr[data-id="{case}"]', timeout=WAIT)
    page.keyboard.press("?")
    page.wait_for_selector("#keys-dialog[open]", timeout=WAIT)
    assert "Dispatch the current case" in page.inner_text("#keys-dialog")
    page.keyboard.press("Escape")
    page.wait_for_selector("#keys-dialog", state="hidden", timeout=WAIT)
    # j from nothing focuses the first row; move to our case with j/k, open it with Enter.
    ids = page.eval_on_selector_all("#open-list tr[data-id]", "rs => rs.map(r => r.dataset.id)")
    page.keyboard.press("j")
    for _ in range(ids.index(case)):
        page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    if ids.index(case) == len(ids) - 1:  # j at the last row stays there
        page.keyboard.press("j")
    assert page.evaluate("document.activeElement.dataset.id") == case
    page.keyboard.press("Enter")
    page.wait_for_selector('#detail-actions button[data-action="accept"]', timeout=WAIT)
    page.keyboard.press("a")
    status_is(page, "Accepted")
    page.keyboard.press("d")
    page.wait_for_selector("#act-form[data-action=dispatch]", timeout=WAIT)
    page.keyboard.press("Escape")  # closes the form first
    page.wait_for_selector("#act-form", state="detached", timeout=WAIT)
    assert page.is_visible("#detail")
    page.keyboard.press("Escape")
    page.wait_for_selector("#detail", state="hidden", timeout=WAIT)
    assert errors == []
    page.close()


def test_the_drawer_follows_a_case_closed_by_someone_else(browser: Any,
                                                         server: RunningServer) -> None:
    errors: list[str] = []
    case = report(server, description="closed elsewhere")
    for action, body in (("accept", {}), ("dispatch", {"assignee": {"kind": "department",
                                                                    "id": "housing"},
                                                       "due": "2030-01-01T00:00:00+00:00",
                                                       "due_reason": "long-term works"}),
                         ("acknowledge", {}), ("resolve", {"outcome": "done"}),
                         ("return-visit", {"satisfaction": 4})):
        done = httpx.post(f"{server.url}/api/incidents/{case}/{action}", headers=server.headers,
                          json=body)
        assert done.status_code == 200, done.text
    page = console(browser, server, token(server, "t-follow", "township_officer", TOWNSHIP),
                   errors, lang="zh-CN")
    page.wait_for_selector("#conn-status[data-state=open]", timeout=WAIT)
    page.wait_for_selector(f'#open-list tr[data-id="{case}"]', timeout=WAIT)
    page.click(f'#open-list tr[data-id="{case}"]')
    status_is(page, "已回访")
    page.wait_for_selector('#detail-actions button[data-action="close"]', timeout=WAIT)
    assert page.inner_text('#detail-actions button[data-action="close"]') == "结案"
    closed = httpx.post(f"{server.url}/api/incidents/{case}/close", headers=server.headers,
                        json={})
    assert closed.status_code == 200
    status_is(page, "已结案")  # it left the queue; the drawer still followed it
    page.wait_for_selector("#detail-timeline .ev-Closed", timeout=WAIT)
    assert page.eval_on_selector_all("#detail-actions button[data-action]", "bs => bs.length") == 0
    # Names, not ids: the assignee by the directory's name, the actor's role translated.
    body = page.inner_text("#detail-body")
    assert "市住房和城乡建设局" in body and "市级值班员" in body
    assert "department:housing" not in body and "city_officer" not in body
    assert errors == []
    page.close()


def test_a_accepts_the_focused_row_without_opening_it_first(browser: Any,
                                                           server: RunningServer) -> None:
    errors: list[str] = []
    page = console(browser, server, token(server, "t-a", "township_officer", TOWNSHIP), errors)
    page.wait_for_selector("#conn-status[data-state=open]", timeout=WAIT)
    case = report(server, category="garbage", description="keyboard accept")
    page.wait_for_selector(f'#open-list tr[data-id="{case}"]', timeout=WAIT)
    page.focus(f'#open-list tr[data-id="{case}"]')
    page.keyboard.press("a")
    status_is(page, "Accepted")
    page.wait_for_function(
        "id => (document.querySelector(`#open-list tr[data-id='${id}'] .c-status`) || {})"
        ".textContent?.startsWith('Accepted')", arg=case, timeout=WAIT)
    assert errors == []
    page.close()
