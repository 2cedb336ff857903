"""The browser fixture itself works: Chromium renders a page memstore serves."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_chromium_renders_the_openapi_document(page, server) -> None:
    page.goto(f"{server.url}/openapi.json")
    assert "memstore" in page.content().lower()
