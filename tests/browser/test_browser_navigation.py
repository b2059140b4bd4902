"""Navigation in a real browser: a deep link opened first on a freshly started server, and the explorer on a phone.

Each test starts its own server, so that the page it opens first is the first page that server runs.
Screenshots go to ``test-artifacts/navigation-*.png``.
"""

import os

import pytest

from tests.browser.dashboard import (
    ARTIFACTS,
    DESKTOP,
    PAGE_TIMEOUT_MS,
    PAGES,
    PHONE,
    open_page,
    start_dashboard,
    trained_manifest_or_skip,
    wait_until_idle,
)

pytestmark = pytest.mark.browser

SIDEBAR = '[data-testid="stSidebar"]'
SIDEBAR_NAV = '[data-testid="stSidebarNav"]'
MAIN_BLOCK = '[data-testid="stMainBlockContainer"]'
DIALOG = '[role="dialog"]'


@pytest.fixture
def fresh_server_url(request):
    """A server no session has visited yet, as after a restart."""
    return start_dashboard(request, dict(os.environ), ARTIFACTS / f"streamlit-server-{request.node.name}.log")


def test_a_deep_link_opened_first_on_a_fresh_server_goes_through_the_router(browser, fresh_server_url):
    trained_manifest_or_skip()
    page = open_page(browser, f"{fresh_server_url}/explore", PAGES["explore"][1], DESKTOP)

    navigation = page.locator(SIDEBAR_NAV).inner_text()
    assert "Compare models" in navigation and "Misclassification explorer" in navigation, navigation
    # Not the file names Streamlit lists for an old-style pages/ folder, with the entrypoint as "app".
    assert "app" not in [line.strip() for line in navigation.splitlines()], navigation
    assert page.locator(SIDEBAR).get_by_role("heading", name="Models").count() == 1
    assert page.title() == "Misclassification explorer · digitlab"
    # The wide layout that app.py sets, not the narrow default of a page run on its own.
    assert page.locator(MAIN_BLOCK).bounding_box()["width"] > 1000
    # The page icon is drawn in the browser (an emoji), not fetched from a font server that may be out of reach.
    assert page.locator("link[rel='shortcut icon']").get_attribute("href").startswith("data:")
    page.screenshot(path=ARTIFACTS / "navigation-cold-deep-link.png")
    page.close()


def test_inspect_on_a_phone_shows_the_image_in_a_dialog_on_screen(browser, fresh_server_url):
    trained_manifest_or_skip()
    page = open_page(browser, f"{fresh_server_url}/explore", PAGES["explore"][1], PHONE)
    inspect = page.get_by_role("button", name="Inspect").nth(5)
    inspect.scroll_into_view_if_needed()

    inspect.click()
    dialog = page.locator(DIALOG)
    dialog.get_by_text("Test image #").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    box = dialog.get_by_text("Test image #").bounding_box()
    assert 0 <= box["y"] < PHONE["height"], "the inspected image's heading must be on screen"
    page.screenshot(path=ARTIFACTS / "navigation-phone-inspect.png")
    page.close()
