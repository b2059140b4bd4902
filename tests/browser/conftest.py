"""The browser tests' fixtures: a dashboard server and a Chromium for each test module that asks for them."""

import os

import pytest

from tests.browser.dashboard import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, start_dashboard


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
