"""The dashboard in a real browser: drawing digits on the canvas, and every page at desktop and phone width.

Starts ``streamlit run app.py`` on a free port and drives Debian's Chromium
with Playwright. Screenshots and the server log go to ``test-artifacts/``.
"""

import os

import numpy as np
import pytest

from digitlab import settings
from digitlab.data.mnist import FILES
from digitlab.insight.comparison import largest_confusion
from digitlab.persistence import read_manifest
from tests.browser.dashboard import (
    ARTIFACTS,
    CANVAS,
    DESKTOP,
    MAIN,
    METRICS,
    PAGE_TIMEOUT_MS,
    PAGES,
    PHONE,
    PREDICTION_TIMEOUT_MS,
    draw,
    heatmap_cell_centre,
    horizontal_overflow,
    model_readings,
    open_draw_page,
    open_page,
    screenshot_whole_page,
    start_dashboard,
    trained_manifest_or_skip,
    wait_until_idle,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def drawn_readings(browser, server_url):
    """What every model reads for a drawn "1" and a drawn "7", keyed by digit and model title."""
    manifest = trained_manifest_or_skip()
    page, canvas = open_draw_page(browser, server_url, DESKTOP)
    strokes = {
        "1": [[(0.5, 0.15), (0.5, 0.85)]],
        "7": [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]],
    }
    readings = {}
    for digit, digit_strokes in strokes.items():
        if readings:
            page.get_by_role("button", name="Clear", exact=True).click()
            page.wait_for_function(f"!document.querySelector('{METRICS}')", timeout=PREDICTION_TIMEOUT_MS)
            wait_until_idle(page)
        canvas = page.locator(CANVAS).first
        canvas.wait_for()
        draw(page, canvas, digit_strokes)
        readings[digit] = model_readings(page, len(manifest.models))
        assert page.locator('[data-testid="stException"]').count() == 0
        screenshot_whole_page(page, ARTIFACTS / f"draw-{digit}.png", DESKTOP)
    page.close()
    return readings


def test_every_model_answers_a_drawn_digit(drawn_readings):
    titles = {entry.title_or(name) for name, entry in read_manifest().models.items()}

    for digit, readings in drawn_readings.items():
        assert set(readings) == titles, f"predictions shown for the drawn {digit}: {readings}"
        assert all(value.isdigit() and len(value) == 1 for value in readings.values()), readings


def test_cnn_reads_the_drawn_digits(drawn_readings):
    cnn = read_manifest().models.get("cnn")
    if cnn is None:
        pytest.skip(f"The manifest in {settings.models_dir()} has no cnn, so there is no CNN reading to check.")
    for digit, readings in drawn_readings.items():
        assert readings[cnn.title] == digit, f"the CNN read the drawn {digit} as {readings[cnn.title]}"


def white_pixels(canvas) -> int:
    """How many pixels of a canvas element the pen has drawn on (white strokes on black)."""
    return canvas.evaluate(
        """element => {
            const data = element.getContext("2d").getImageData(0, 0, element.width, element.height).data;
            let count = 0;
            for (let i = 0; i < data.length; i += 4) if (data[i] > 128 && data[i + 3] > 0) count++;
            return count;
        }"""
    )


def test_a_drawing_outlives_another_page_and_its_preselected_digit_can_be_confirmed(browser, server_url):
    manifest = trained_manifest_or_skip()
    page, canvas = open_draw_page(browser, server_url, DESKTOP)
    draw(page, canvas, [[(0.5, 0.15), (0.5, 0.85)]])
    before = model_readings(page, len(manifest.models))

    page.get_by_role("link", name="My digits").first.click()
    page.get_by_role("heading", name="My digits").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    page.get_by_role("link", name=PAGES["draw"][1]).first.click()
    page.get_by_role("heading", name=PAGES["draw"][1]).first.wait_for(timeout=PAGE_TIMEOUT_MS)

    assert model_readings(page, len(manifest.models)) == before
    assert white_pixels(page.locator("canvas.dc-canvas.lower-canvas").first) > 0, "the canvas shows the drawing again"
    screenshot_whole_page(page, ARTIFACTS / "draw-after-another-page.png", DESKTOP)

    # Clicking the preselected digit confirms it: it stays chosen, and the drawing is saved with it.
    form = page.locator(f'{MAIN} [data-testid="stForm"]')
    chosen = form.locator('[role="radio"][aria-checked="true"]')
    digit = chosen.inner_text().strip()
    chosen.click()
    wait_until_idle(page)
    assert form.locator('[role="radio"][aria-checked="true"]').count() == 1
    form.get_by_role("button", name="Save with this digit").click()
    page.get_by_text(f"Saved as a {digit}").wait_for(timeout=PAGE_TIMEOUT_MS)
    assert page.get_by_text("Pick the right digit before saving").count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


@pytest.mark.parametrize("viewport_name", ["desktop", "phone"])
@pytest.mark.parametrize("page_name", list(PAGES))
def test_page_renders_without_exception(browser, server_url, page_name, viewport_name):
    path, heading = PAGES[page_name]
    viewport = DESKTOP if viewport_name == "desktop" else PHONE
    page = open_page(browser, f"{server_url}/{path}", heading, viewport)

    assert page.locator('[data-testid="stException"]').count() == 0
    # On a phone the page may scroll down, but nothing may stick out sideways.
    overflow = horizontal_overflow(page)
    screenshot_whole_page(page, ARTIFACTS / f"{page_name}-{viewport_name}.png", viewport)
    page.close()
    assert overflow <= 1, f"{page_name} is {overflow} px wider than a {viewport['width']} px screen"


def test_a_clicked_confusion_cell_lists_its_images_and_opens_the_explorer(browser, server_url):
    manifest = trained_manifest_or_skip()
    entry = list(manifest.models.values())[-1]
    matrix = np.asarray(entry.metrics.confusion_matrix)
    true_digit, predicted_digit = largest_confusion(matrix)
    count = int(matrix[true_digit, predicted_digit])
    page = open_page(browser, f"{server_url}/compare", PAGES["compare"][1], DESKTOP)

    page.mouse.click(*heatmap_cell_centre(page, entry.title, true_digit, predicted_digit))
    wait_until_idle(page)

    listed = f"{count:,} test images of a {true_digit} that {entry.title} reads as {predicted_digit}"
    page.get_by_text(listed).wait_for(timeout=PAGE_TIMEOUT_MS)
    screenshot_whole_page(page, ARTIFACTS / "compare-cell-clicked.png", DESKTOP)

    page.get_by_role("button", name="Open these mistakes in the explorer").click()
    page.get_by_role("heading", name=PAGES["explore"][1]).first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    assert page.url.endswith("/explore")
    assert page.get_by_text(f"of {count:,} matching images").count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot_whole_page(page, ARTIFACTS / "explore-from-cell.png", DESKTOP)
    page.close()


def test_explorer_sample_tab_marks_each_models_answers(browser, server_url):
    page = open_page(browser, f"{server_url}/explore", PAGES["explore"][1], DESKTOP)

    page.get_by_role("tab", name="Sample").click()
    page.get_by_text("In this sample:").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    assert page.get_by_text("✓").count() + page.get_by_text("✗").count() > 0
    screenshot_whole_page(page, ARTIFACTS / "explore-sample-desktop.png", DESKTOP)
    page.close()


def test_a_first_visit_to_the_explorer_downloads_mnist_into_a_fresh_data_folder(
    request, browser, tmp_path, http_mirror
):
    trained_manifest_or_skip()
    fresh = tmp_path / "fresh-cache" / "mnist"
    environment = dict(os.environ)
    environment.update({settings.DATA_DIR_VARIABLE: str(fresh), settings.MNIST_MIRRORS_VARIABLE: http_mirror})
    url = start_dashboard(request, environment, ARTIFACTS / "streamlit-server-fresh-data.log")
    page = open_page(browser, url, PAGES["draw"][1], DESKTOP)

    page.get_by_role("link", name=PAGES["explore"][1]).first.click()
    page.get_by_text("matching images").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    assert sorted(path.name for path in fresh.iterdir()) == sorted(spec.gz_name for spec in FILES.values())
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    screenshot_whole_page(page, ARTIFACTS / "explore-fresh-data.png", DESKTOP)
    page.close()


def test_server_log_has_no_tracebacks_deprecations_or_retracing_warnings(browser, server_url):
    for path, heading in PAGES.values():
        open_page(browser, f"{server_url}/{path}", heading, DESKTOP).close()
    log = (ARTIFACTS / "streamlit-server.log").read_text()

    assert "Traceback" not in log, log
    assert "deprecat" not in log.lower(), log
    # TensorFlow warns about retracing when many networks are traced from one Python function.
    assert "retracing" not in log, log


def test_a_drawn_house_is_not_read_as_a_digit(browser, server_url):
    trained_manifest_or_skip()
    page, canvas = open_draw_page(browser, server_url, DESKTOP)
    house = [
        [(0.2, 0.45), (0.2, 0.85), (0.8, 0.85), (0.8, 0.45), (0.2, 0.45)],
        [(0.2, 0.45), (0.5, 0.15), (0.8, 0.45)],
        [(0.42, 0.85), (0.42, 0.65), (0.58, 0.65), (0.58, 0.85)],
    ]
    draw(page, canvas, house)
    page.get_by_text("This does not look like a digit").wait_for(timeout=PREDICTION_TIMEOUT_MS)
    # The models' dimmed cards follow the warning in the page's stream: on a busy machine they arrive later.
    page.get_by_text("closest digit").first.wait_for(timeout=PREDICTION_TIMEOUT_MS)

    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot_whole_page(page, ARTIFACTS / "draw-not-a-digit.png", DESKTOP)
    page.close()
