"""The browser tests' fixtures: a dashboard server and a Chromium for each test module that asks for them.

When a browser test fails, every page still open is photographed into ``test-artifacts/`` and its main area's
text is printed, so a failure in CI (where only the log survives) says what the page showed.
"""

import os
import sys

import pytest

from tests.browser.dashboard import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, MAIN, start_dashboard

# How much of a failed page's text goes into the log: enough to read its messages, not a whole table.
FAILED_PAGE_TEXT_CHARS = 3000
# Where a test's own outcome waits for the fixture below, which runs after the report is made.
CALL_REPORT = pytest.StashKey()


@pytest.fixture(scope="module")
def server_url(request):
    # The session's MNIST folder is in the environment (tests/conftest.py), so the server reads the same data.
    return start_dashboard(request, dict(os.environ), ARTIFACTS / "streamlit-server.log")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


@pytest.fixture(autouse=True)
def pages_shown_on_failure(request):
    """After a failed test, a screenshot and the text of each page it left open."""
    yield
    report = request.node.stash.get(CALL_REPORT, None)
    if report is None or not report.failed or "browser" not in request.fixturenames:
        return
    from playwright.sync_api import Error as PlaywrightError

    browser = request.getfixturevalue("browser")
    open_pages = [page for context in browser.contexts for page in context.pages if not page.is_closed()]
    for number, page in enumerate(open_pages, start=1):
        path = ARTIFACTS / f"failed-{request.node.name}-{number}.png"
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=path, timeout=10_000)
            text = page.locator(MAIN).first.inner_text(timeout=10_000)
        except PlaywrightError as error:  # The page may be what broke; the test's own failure is the one to report.
            text = f"(the page could not be read: {error})"
        sys.stderr.write(f"\nPage {number} left open by the failed test ({page.url}), saved as {path}:\n")
        sys.stderr.write(text[:FAILED_PAGE_TEXT_CHARS] + "\n")
