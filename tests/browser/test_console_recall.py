"""The console's search shows why each memory came back and how many near-duplicates were
collapsed into it (real Chromium, real `memstore serve`)."""

from __future__ import annotations

import uuid

import pytest

from tests.browser.test_console import sdk, sign_in, watched  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser


def test_search_shows_why_and_the_collapsed_versions(watched, server, screenshot_dir):  # noqa: F811
    page = watched
    key = server.key(f"why-{uuid.uuid4().hex[:6]}").key
    ms = sdk(server, key)
    runs = [
        ms.remember(
            f"Research completed for Acme Corp on 2026-03-0{day}: Acme lacks API docs",
            session="alpha",
        )
        for day in range(1, 4)
    ]
    ms.remember("The office plants need water on Fridays", session="alpha")
    sign_in(page, server, key)

    page.click("#nav >> text=Search")
    page.fill("#q", "Acme research")
    page.click("#search button[type=submit]")
    first = page.locator("#results li.memory").first
    first.wait_for()
    assert "Research completed for Acme Corp on 2026-03-03" in first.inner_text()
    why = first.locator(".why").inner_text()
    assert "cosine 0." in why and "keywords acme, research (#" in why
    assert "2 similar collapsed" in why
    similar = first.locator("details.similar")
    assert similar.locator("summary").inner_text() == "2 similar older versions"
    similar.locator("summary").click()
    links = similar.locator("a")
    assert sorted(links.all_inner_texts()) == sorted(m.id for m in runs[:2])
    page.screenshot(path=str(screenshot_dir / "console_search_why.png"), full_page=True)
    links.first.click()
    page.wait_for_selector("#memory-content")
    assert "Research completed for Acme Corp" in page.inner_text("#memory-content")
