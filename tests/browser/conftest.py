"""Playwright fixtures: headless Debian Chromium against pytest-django's live server."""

import os
from pathlib import Path

import pytest

from tests.conftest import chromium_path

# Playwright's sync API runs an asyncio event loop in the test thread, and Django refuses
# database access from a thread with a running loop unless this is set. It is set on import,
# so it stays set for the rest of a pytest run that collects this folder.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    if not executable or not Path(executable).is_file():
        pytest.skip(
            f"Chromium not found (looked for {executable or 'chromium on PATH'}); install the "
            f"Debian chromium package or set CHROMIUM_PATH to its executable"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


def save_screenshot(page, name):
    """Save a screenshot of the page's viewport to test-results/screenshots/<name>.png.

    test-results/ is git-ignored. Return the path, so a test can name it in a message.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
