"""In a real browser: draw a digit, save it with a corrected label, and find it on the My digits page.

Uses the server and browser fixtures of ``tests/browser/conftest.py``; the server gets its own empty database
through ``DIGITLAB_DB``, set before it starts.
"""

import os

import pytest

from digitlab import settings
from digitlab.formatting import indefinite_article
from digitlab.lab.feedback import FeedbackStore
from tests.browser.dashboard import (
    ARTIFACTS,
    DESKTOP,
    MAIN,
    PAGE_TIMEOUT_MS,
    PHONE,
    draw,
    horizontal_overflow,
    model_readings,
    open_draw_page,
    open_page,
    screenshot_whole_page,
    trained_manifest_or_skip,
    wait_until_idle,
)

pytestmark = pytest.mark.browser

SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]]


@pytest.fixture(scope="module", autouse=True)
def feedback_database(tmp_path_factory):
    """An empty database for the server this module starts; autouse makes it exist before the server does."""
    path = tmp_path_factory.mktemp("feedback") / "browser.sqlite3"
    previous = os.environ.get(settings.DATABASE_VARIABLE)
    os.environ[settings.DATABASE_VARIABLE] = str(path)
    yield path
    if previous is None:
        del os.environ[settings.DATABASE_VARIABLE]
    else:
        os.environ[settings.DATABASE_VARIABLE] = previous


def test_a_corrected_drawing_is_saved_and_listed_on_my_digits(browser, server_url, feedback_database):
    manifest = trained_manifest_or_skip()
    page, canvas = open_draw_page(browser, server_url, DESKTOP)
    draw(page, canvas, SEVEN)
    readings = model_readings(page, len(manifest.models))
    # A digit no model read: saving it is a correction, not a confirmation.
    corrected = min(set(range(10)) - {int(value) for value in readings.values()})

    form = page.locator(f'{MAIN} [data-testid="stForm"]')
    # Streamlit draws the digit pills as a group of radio buttons.
    form.get_by_role("radio", name=str(corrected), exact=True).click()
    form.get_by_role("button", name="Save with this digit").click()
    page.get_by_text(f"Saved as {indefinite_article(corrected)} {corrected}").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot_whole_page(page, ARTIFACTS / "draw-saved.png", DESKTOP)
    page.close()

    with FeedbackStore(feedback_database) as store:
        (drawing,) = store.drawings()
    assert drawing.label == corrected and drawing.source == "drawn"
    assert set(drawing.predictions) == set(manifest.models)

    page = open_page(browser, f"{server_url}/my_digits", "My digits", DESKTOP)
    page.get_by_text("1 saved drawing", exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)
    page.get_by_text(f"#{drawing.id} · drawn").wait_for(timeout=PAGE_TIMEOUT_MS)
    assert page.locator(f'{MAIN} input[aria-label="Label"]').input_value() == str(corrected)
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot_whole_page(page, ARTIFACTS / "my-digits-desktop.png", DESKTOP)

    page.get_by_role("tab", name="Accuracy").click()
    page.locator(f"{MAIN} .js-plotly-plot").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot_whole_page(page, ARTIFACTS / "my-digits-accuracy.png", DESKTOP)
    page.close()

    page = open_page(browser, f"{server_url}/my_digits", "My digits", PHONE)
    overflow = horizontal_overflow(page)
    screenshot_whole_page(page, ARTIFACTS / "my-digits-phone.png", PHONE)
    page.close()
    assert overflow <= 1, f"My digits is {overflow} px wider than a {PHONE['width']} px screen"
