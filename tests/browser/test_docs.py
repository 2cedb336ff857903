"""/docs in a real Chromium with no network but the server: authorize with a key, run a recall."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.browser


def test_docs_page_authorizes_and_runs_a_recall_offline(page, server) -> None:
    key = server.key(f"docs-{uuid.uuid4().hex[:8]}").key
    content = f"Swagger UI recalled this offline {uuid.uuid4().hex[:6]}"
    stored = httpx.post(
        f"{server.url}/v1/memory/remember",
        json={"content": content},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert stored.status_code == 201
    own = urlsplit(server.url).netloc
    blocked: list[str] = []

    def only_the_server(route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(f"{server.url}/docs")
    page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.locator("input").fill(key)
    dialog.locator("button.authorize").click()
    dialog.locator("button.btn-done").click()

    recall = page.locator(".opblock-get", has=page.locator("[data-path='/v1/memory/recall']"))
    recall.locator(".opblock-summary").click()
    recall.locator("button.try-out__btn").click()
    recall.locator("tr[data-param-name='q'] input").fill("recalled offline")
    recall.locator("button.execute").click()
    result = recall.locator(".live-responses-table")
    result.locator(".response-col_status", has_text="200").wait_for(timeout=30_000)
    assert content in result.inner_text()
    assert blocked == []
