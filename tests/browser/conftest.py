"""The browser tests' fixtures: a dashboard server and a Chromium for each test module that asks for them."""

import os

import pytest

from tests.browser.dashboard import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, DESKTOP, PAGES, open_page, start_dashboard


@pytest.fixture(scope="module")
def server_url(request):
    # The session's MNIST folder is in the environment (tests/conftest.py), so the server reads the same data.
    return start_dashboard(request, dict(os.environ), ARTIFACTS / "streamlit-server.log")


@pytest.fixture(scope="module")
def browser(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        # Until some session has run app.py, Streamlit treats pages/ as an old-style multipage folder and runs a
        # deep-linked page without app.py (no page config, no sidebar); opening the entry page first avoids that.
        open_page(chromium, server_url, PAGES["draw"][1], DESKTOP).close()
        yield chromium
        chromium.close()
