"""The console in a real headless Chromium against a real `memstore serve`, used as a person
would: sign in, find, edit and forget memories, watch usage, manage keys, export.

Every test fails if the page opens a dialog (alert/confirm/prompt) or logs an error — which
is also how a memory's hostile HTML, or a Content-Security-Policy violation, would show.
"""

from __future__ import annotations

import calendar
import json
import re
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import expect

from memstore import Memstore, NotFoundError

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)  # a loaded CI machine embeds slowly


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _is_error(message) -> bool:
    # Chromium logs every 4xx fetch; the tests that expect one check the page's own message.
    refused = re.match(r"Failed to load resource: .* status of 4\d\d", message.text)
    return message.type == "error" and not refused


@pytest.fixture
def watched(page):
    """The page, failing the test on any dialog or console error."""
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(f"{d.type}: {d.message}"), d.dismiss()))
    page.on("console", lambda m: errors.append(m.text) if _is_error(m) else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(30_000)
    yield page
    assert dialogs == [], f"the page opened dialogs: {dialogs}"
    assert errors == [], f"the page logged errors: {errors}"


def sign_in(page, server, key: str) -> None:
    page.goto(server.url + "/")  # the root redirects to the console
    assert page.url.endswith("/console")
    page.fill("#key", key)
    page.press("#key", "Enter")
    page.wait_for_selector("#nav:not([hidden])")
    assert key not in page.url


def sdk(server, key: str) -> Memstore:
    return Memstore(api_key=key, base_url=server.url)


def test_find_edit_and_forget_a_memory_stored_through_the_sdk(watched, server, screenshot_dir):
    page = watched
    key = server.key(_name("console")).key
    ms = sdk(server, key)
    marker = uuid.uuid4().hex[:8]
    stored = ms.remember(
        f"The deploy checklist {marker} lives in the ops wiki",
        session="project-x",
        metadata={"kind": "docs"},
    )
    ms.remember("Lunch is at noon", session="project-x", metadata={"kind": "chatter"})
    ms.remember("Another project entirely", session="project-y")
    sign_in(page, server, key)

    page.wait_for_selector("text=project-x")
    row = page.locator("tr", has=page.locator("a", has_text="project-x"))
    assert row.locator("td").nth(1).inner_text() == "2"

    page.click("#nav >> text=Search")
    page.fill("#q", "where is the deploy checklist")
    page.locator("label.check", has_text="project-x").locator("input").check()
    page.click("text=Add a metadata filter")
    page.fill("input[name=filter-key]", "kind")
    page.fill("input[name=filter-value]", "docs")
    page.click("#search button[type=submit]")
    first = page.locator("#results li.memory").first
    first.wait_for()
    assert page.locator("#results li.memory").count() == 1  # the filter kept only docs
    assert marker in first.inner_text()
    assert 0 < float(first.locator(".score").inner_text()) <= 1
    page.screenshot(path=str(screenshot_dir / "console_search_results.png"), full_page=True)

    first.locator("a.content").click()
    page.wait_for_selector("#memory-content")
    assert page.inner_text("#memory-content") == stored.content
    page.fill("#edit-content", f"The deploy checklist {marker} moved to the handbook")
    page.fill("#edit-metadata", '{"kind": "docs", "reviewed": true}')
    page.click("#edit button[type=submit]")
    page.wait_for_selector("#status >> text=Saved.")
    got = ms.get(stored.id)
    assert got.content.endswith("moved to the handbook")
    assert got.metadata == {"kind": "docs", "reviewed": True}

    page.click("#forget")
    page.wait_for_selector("#confirm[open]")
    page.click("#confirm-ok")
    page.wait_for_selector("#status >> text=Forgotten.")
    with pytest.raises(NotFoundError):
        ms.get(stored.id)
    assert key not in server.log()  # the console never puts the key in a URL


def test_forgetting_a_session_names_it_and_its_count(watched, server):
    page = watched
    key = server.key(_name("console")).key
    ms = sdk(server, key)
    for n in range(23):
        ms.remember(f"note {n}", session="scratch")
    ms.remember("kept", session="keep")
    sign_in(page, server, key)
    page.wait_for_selector("a:text-is('(shared)')")  # listed even while empty
    page.click("a:text-is('scratch')")
    page.wait_for_selector("li.memory")
    notes = page.locator("li.memory .content")
    assert notes.count() == 20 and notes.first.inner_text() == "note 22"  # newest first
    page.click("text=Older memories")
    expect(notes).to_have_count(23)
    assert notes.last.inner_text() == "note 0"
    assert page.locator("text=Older memories").is_hidden()
    page.click("#forget-session")
    page.wait_for_selector("#confirm[open]")
    text = page.inner_text("#confirm-text")
    assert "scratch" in text and "23 memories" in text
    page.keyboard.press("Escape")  # cancel first: nothing happens
    expect(page.locator("#confirm")).not_to_have_attribute("open", "")
    assert [s.count for s in ms.sessions() if s.session == "scratch"] == [23]
    page.click("#forget-session")
    page.click("#confirm-ok")
    page.wait_for_selector("#status >> text=Forgot 23 memories of scratch.")
    assert {s.session for s in ms.sessions()} == {"keep"}


def test_add_a_memory_by_hand_with_session_metadata_and_ttl(watched, server):
    page = watched
    key = server.key(_name("console")).key
    sign_in(page, server, key)
    page.click("#nav >> text=Add")
    page.fill("#add-content", "Seeded by hand: the staging DB is read-only on Fridays")
    page.fill("#add-session", "seed")
    page.fill("#add-metadata", '{"source": "console"}')
    page.fill("#add-ttl", "3600")
    page.click("#add button[type=submit]")
    page.wait_for_selector("#memory-content")
    assert "never" not in page.locator(".facts").inner_text()  # it expires
    (found,) = sdk(server, key).list(session="seed").memories
    assert found.metadata == {"source": "console"} and found.expires_at is not None


def test_usage_shows_operations_against_the_cap_and_per_day(watched, server):
    page = watched
    key = server.key(_name("console"), plan="free").key
    ms = sdk(server, key)
    ms.remember("one op")
    sign_in(page, server, key)
    page.click("#nav >> text=Usage")
    summary = page.locator("#usage-summary")
    summary.wait_for()
    assert summary.inner_text().startswith("1 of 1,000 operations")
    now = datetime.now(UTC)
    assert page.locator("svg.chart rect.bar").count() == calendar.monthrange(now.year, now.month)[1]
    ms.remember("two")
    ms.recall("two")
    page.reload()
    page.wait_for_selector("#usage-summary")
    assert page.inner_text("#usage-summary").startswith("3 of 1,000 operations")
    today = page.locator("svg.chart rect.bar").nth(now.day - 1)
    assert float(today.get_attribute("height")) > 0
    assert f"{now:%Y-%m-%d}: 3 operations" in today.text_content()


def test_an_admin_creates_and_revokes_a_key(watched, server):
    page = watched
    admin = server.key(_name("admin"), admin=True).key
    sign_in(page, server, admin)
    page.click("#nav-keys")
    page.wait_for_selector("#create-key")
    account = _name("made-in-console")
    page.fill("#key-account", account)
    page.select_option("#key-plan", "free")
    page.click("#create-key button[type=submit]")
    created = page.locator("#created-key")
    created.wait_for()
    new_key = created.input_value()
    assert re.fullmatch(r"am_live_[A-Za-z0-9]{40}", new_key)
    page.click("#copy-key")
    page.wait_for_selector("#status p")
    with httpx.Client(base_url=server.url) as http:
        assert (
            http.get("/v1/usage", headers={"Authorization": f"Bearer {new_key}"}).json()["plan"]
            == "free"
        )
        page.reload()
        page.wait_for_selector("#create-key")
        row = page.locator("tr", has=page.locator("td", has_text=account))
        assert "never" not in row.inner_text()  # the request above was recorded
        assert new_key not in page.content()  # shown once only
        row.locator("button", has_text="Revoke").click()
        page.wait_for_selector("#confirm[open]")
        assert account in page.inner_text("#confirm-text")
        page.click("#confirm-ok")
        page.wait_for_selector("#status >> text=Revoked")
        # the table is drawn again after the status line: wait for it
        expect(page.locator("tr", has=page.locator("td", has_text=account))).to_contain_text(
            "revoked"
        )
        r = http.get("/v1/usage", headers={"Authorization": f"Bearer {new_key}"})
        assert r.status_code == 401


def test_a_non_admin_is_refused_key_management(watched, server):
    page = watched
    key = server.key(_name("plain")).key
    sign_in(page, server, key)
    assert page.locator("#nav-keys").is_hidden()
    page.goto(server.url + "/console#/keys")
    page.wait_for_selector("#keys-refused")
    assert "admin key" in page.inner_text("#keys-refused")
    # The API itself refuses the page's own key, whatever the page shows.
    status = page.evaluate(
        """async (key) => (await fetch('/v1/admin/keys',
             {headers: {Authorization: 'Bearer ' + key}})).status""",
        key,
    )
    assert status == 403


def test_a_slow_page_does_not_paint_over_the_page_opened_after_it(watched, server):
    """The sessions list is still loading when the user opens Keys; when its answer comes,
    the Keys page stays."""
    page = watched
    held = []
    page.route("**/v1/sessions*", lambda route: held.append(route))
    sign_in(page, server, server.key(_name("slow")).key)
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the sessions page never asked for /v1/sessions"
    page.goto(server.url + "/console#/keys")
    page.wait_for_timeout(200)
    held[0].continue_()
    page.wait_for_selector("#keys-refused")
    page.wait_for_timeout(500)  # the sessions answer has arrived and been handled
    assert page.locator("#keys-refused").is_visible()
    assert page.title().startswith("Keys")


HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    '"><svg onload=alert(3)>',
    '<a href="javascript:alert(4)">click</a>',
]


def test_hostile_memory_content_is_shown_as_text_and_never_runs(watched, server):
    page = watched
    key = server.key(_name("xss")).key
    ms = sdk(server, key)
    session = "<b onmouseover=alert(5)>s</b>"
    ids = [
        ms.remember(text, session=session, metadata={"note": "<img src=x onerror=alert(6)>"}).id
        for text in HOSTILE
    ]
    sign_in(page, server, key)
    page.click(f"a:text-is('{session}')")
    page.wait_for_selector("li.memory")
    assert sorted(page.locator("li.memory .content").all_inner_texts()) == sorted(HOSTILE)
    page.click("#nav >> text=Search")
    page.fill("#q", "alert script img onerror svg")
    page.click("#search button[type=submit]")
    page.wait_for_selector("#results li.memory")
    for memory_id, text in zip(ids, HOSTILE, strict=True):
        page.goto(f"{server.url}/console#/m/{memory_id}")
        expect(page.locator("#memory-content")).to_have_text(text)
        expect(page.locator("#edit-content")).to_have_value(text)
    page.hover("a:text-is('" + session + "')")
    assert page.locator("main img, main svg[onload], main script, main b").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_export_downloads_json_lines_in_the_cli_format(watched, server, tmp_path):
    page = watched
    key = server.key(_name("export")).key
    ms = sdk(server, key)
    ms.remember("first", session="a")
    ms.remember("second")
    sign_in(page, server, key)
    with page.expect_download() as download:
        page.click("#export")
    path = tmp_path / "export.jsonl"
    download.value.save_as(path)
    header, *records = (json.loads(line) for line in path.read_text().splitlines())
    assert header["format"] == "memstore-export/1"
    assert [r["content"] for r in records] == ["first", "second"]
    assert all("embedding" in r for r in records)


def test_sign_out_forgets_the_key(watched, server):
    page = watched
    key = server.key(_name("out")).key
    sign_in(page, server, key)
    assert page.evaluate("sessionStorage.getItem('memstore.key')") == key
    page.click("#sign-out")
    page.wait_for_selector("#sign-in")
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    page.wait_for_selector("#sign-in")


def test_a_wrong_key_is_refused_with_the_servers_message(watched, server):
    page = watched
    page.goto(server.url + "/console")
    page.fill("#key", "am_live_" + "x" * 40)
    page.press("#key", "Enter")
    page.wait_for_selector("#status .error")
    assert "invalid API key" in page.inner_text("#status")
    assert page.evaluate("sessionStorage.length") == 0


def test_keyboard_only_and_a_phone_sized_screen(browser, server, screenshot_dir):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        key = server.key(_name("phone")).key
        sdk(server, key).remember("A long line " + "without-breaks-" * 30, session="mobile")
        page.goto(server.url + "/console")
        page.keyboard.type(key)  # the key field has focus on load
        page.keyboard.press("Enter")
        page.wait_for_selector("#nav:not([hidden])")
        page.wait_for_selector("a:text-is('mobile')")
        # Tab through the page to the session link and open it with Enter.
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent") == "mobile":
                break
        page.keyboard.press("Enter")
        page.wait_for_selector("li.memory")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page scrolls sideways ({width}px)"
        page.screenshot(path=str(screenshot_dir / "console_phone_session.png"), full_page=True)
    finally:
        context.close()


def test_dark_and_light_follow_the_system(browser, server, screenshot_dir):
    key = server.key(_name("scheme")).key
    sdk(server, key).remember("Colours follow prefers-color-scheme", session="theme")
    backgrounds = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme, viewport={"width": 1024, "height": 700})
        page = context.new_page()
        try:
            sign_in(page, server, key)
            page.wait_for_selector("a:text-is('theme')")
            backgrounds[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
            page.screenshot(path=str(screenshot_dir / f"console_sessions_{scheme}.png"))
        finally:
            context.close()
    assert backgrounds == {"light": "rgb(255, 255, 255)", "dark": "rgb(20, 23, 27)"}
