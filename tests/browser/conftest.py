"""A real headless Chromium (Debian's package) driven by playwright, for pages memstore serves.

Screenshots go to ``$MEMSTORE_SCREENSHOTS`` (default ``<tmp>/memstore-screenshots``); the
folder is printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

pytestmark = pytest.mark.browser


def chromium_path() -> str | None:
    return os.environ.get("MEMSTORE_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    path = Path(
        os.environ.get("MEMSTORE_SCREENSHOTS")
        or Path(tempfile.gettempdir()) / "memstore-screenshots"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium per test module; tests open their own pages (contexts).

    Module scope, not session: playwright's sync API keeps an event loop running while it is
    open, and ``asyncio.run`` in later test modules would fail beside it.
    """
    executable = chromium_path()
    if executable is None:
        pytest.fail("chromium is not installed (scripts/test.sh installs Debian's package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, screenshot_dir: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser context and page; a screenshot named after the test is saved at the end."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    name = request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    try:
        page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True)
    finally:
        context.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    folder = os.environ.get("MEMSTORE_SCREENSHOTS") or Path(tempfile.gettempdir()) / (
        "memstore-screenshots"
    )
    if Path(folder).exists() and any(Path(folder).glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {folder}")
