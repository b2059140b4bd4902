"""The insight views in a real browser: heat maps for a drawn digit and a test image, the map, label issues.

Uses the server and browser fixtures of ``tests/browser/conftest.py``; screenshots go to
``test-artifacts/insight-*.png``.
"""

import re

import pytest

from digitlab.errors import DigitlabError
from digitlab.insight.artefact import load_insight
from tests.browser.dashboard import (
    ARTIFACTS,
    DESKTOP,
    MODEL_LOAD_TIMEOUT_MS,
    PAGE_TIMEOUT_MS,
    PAGES,
    PHONE,
    PREDICTION_TIMEOUT_MS,
    draw,
    horizontal_overflow,
    open_draw_page,
    open_page,
    plot_point_centre,
    screenshot_whole_page,
    trained_manifest_or_skip,
    wait_until_idle,
)
from ui.resources import model_titles

pytestmark = pytest.mark.browser

DIALOG = '[role="dialog"]'
EXCEPTION = '[data-testid="stException"]'
MARKDOWN = '[data-testid="stMarkdownContainer"]'


@pytest.fixture(scope="module")
def titles():
    return model_titles(trained_manifest_or_skip())


@pytest.fixture(scope="module")
def insight(titles):
    try:
        return load_insight()
    except DigitlabError as error:
        pytest.skip(f"No usable insight artefact: {error}")


def heat_map_captions(page, count: int) -> list[str]:
    """Wait for ``count`` heat maps and return their captions."""
    page.wait_for_function(
        f"n => Array.from(document.querySelectorAll('{MARKDOWN}'))"
        ".filter(element => element.innerText.includes('occlusion ·')).length >= n",
        arg=count,
        timeout=MODEL_LOAD_TIMEOUT_MS,
    )
    wait_until_idle(page)
    captions = page.locator(MARKDOWN, has_text="occlusion ·")
    return [captions.nth(position).inner_text() for position in range(captions.count())]


def seven_with_toggle_on(browser, server_url: str, viewport, toggle: str):
    """The Draw page with a 7 drawn on its canvas, read, and the switch labelled ``toggle`` turned on."""
    page, canvas = open_draw_page(browser, server_url, viewport)
    draw(page, canvas, [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]])
    page.get_by_text(toggle).first.wait_for(timeout=PREDICTION_TIMEOUT_MS)
    wait_until_idle(page)
    page.get_by_text(toggle).first.click()
    return page


def test_a_drawn_digit_gets_a_heat_map_from_every_model(browser, server_url, titles):
    page = seven_with_toggle_on(browser, server_url, DESKTOP, "Why this answer")
    captions = heat_map_captions(page, len(titles))

    assert page.locator(EXCEPTION).count() == 0
    assert all(any(title in caption for caption in captions) for title in titles.values()), captions
    screenshot_whole_page(page, ARTIFACTS / "insight-draw-heat-maps.png", DESKTOP)
    page.close()


def test_a_test_images_mistake_shows_look_alikes_and_heat_maps(browser, server_url, titles, insight):
    page = open_page(browser, f"{server_url}/explore", PAGES["explore"][1], DESKTOP)
    page.get_by_role("button", name="Inspect").first.click()
    dialog = page.locator(DIALOG)

    dialog.get_by_text("look-alikes", exact=True).click()
    dialog.get_by_text("nearest to it (labelled digit)").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    assert dialog.get_by_text("nearest to it (read instead)").count() >= 1
    page.screenshot(path=ARTIFACTS / "insight-explore-look-alikes.png")

    dialog.get_by_text("heat maps", exact=True).click()
    captions = heat_map_captions(page, len(titles))
    # Large enough to see which strokes light up, and in rows rather than one tall column.
    heat_maps = dialog.locator('[data-testid="stImage"] img')
    widths = [heat_maps.nth(position).bounding_box()["width"] for position in range(heat_maps.count())]
    assert min(widths) >= 150, widths
    content_height = page.evaluate(
        f"Math.max(...Array.from(document.querySelectorAll('{DIALOG} *')).map(element => element.scrollHeight))"
    )
    assert content_height < 2 * DESKTOP["height"], content_height

    assert page.locator(EXCEPTION).count() == 0
    assert all(any(title in caption for caption in captions) for title in titles.values()), captions
    page.screenshot(path=ARTIFACTS / "insight-explore-heat-maps.png")
    page.close()


def test_a_lasso_on_the_map_selects_images_and_filters_the_mistakes(browser, server_url, insight):
    page = open_page(browser, f"{server_url}/explore", PAGES["explore"][1], DESKTOP)
    page.get_by_role("tab", name="Map").click()
    plot = page.locator(".js-plotly-plot .nsewdrag").first
    plot.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    plot.scroll_into_view_if_needed()

    # A lasso around the middle third of the map, drawn with real mouse moves.
    corners = [(0.33, 0.33), (0.67, 0.33), (0.67, 0.67), (0.33, 0.67), (0.34, 0.34)]
    draw(page, plot, [corners], steps=12)
    page.get_by_text("mistakes first:").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    assert page.locator(EXCEPTION).count() == 0
    screenshot_whole_page(page, ARTIFACTS / "insight-map-selection.png", DESKTOP)
    page.get_by_role("tab", name="Mistakes").click()
    assert page.get_by_text("images selected on the map of the test set").count() == 1
    page.close()


def test_the_suspected_label_errors_view_lists_thirty_images_with_evidence(browser, server_url, titles):
    page = open_page(browser, f"{server_url}/explore", PAGES["explore"][1], DESKTOP)

    page.get_by_role("tab", name="Doubtful labels").click()
    page.get_by_text("1. test image #").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    cards = page.locator(MARKDOWN, has_text=re.compile(r"^\d+\. test image #"))
    assert cards.count() == 30
    assert all(title in cards.first.inner_text() for title in titles.values())
    assert page.locator(EXCEPTION).count() == 0
    screenshot_whole_page(page, ARTIFACTS / "insight-label-errors.png", DESKTOP)
    page.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_drawn_digit_can_be_followed_inside_each_model(browser, server_url, viewport):
    page = seven_with_toggle_on(browser, server_url, viewport, "Inside the models")
    page.get_by_text("What drives channel").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    # A click on a channel of the second block (the centre of its sixth map) chooses it for the driving pixels.
    x, y, (channel, _) = plot_point_centre(page, "Block 2 · 16 strongest", 9 * 5 + 4)
    page.mouse.click(x, y)
    page.get_by_text(f"What drives channel {channel}").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    # The frame moved with the choice: from the first block's strongest channel to the clicked one.
    page.wait_for_function(
        """() => {
            const grids = Array.from(document.querySelectorAll(".js-plotly-plot"))
                .filter(plot => plot._fullLayout && plot._fullLayout.title.text.includes("strongest of"));
            return grids.length === 2 && grids[0]._fullLayout.shapes.length === 0
                && grids[1]._fullLayout.shapes.length === 1;
        }""",
        timeout=PAGE_TIMEOUT_MS,
    )
    page.get_by_role("tab", name="SVM: support vectors").click()
    page.get_by_text("closest duel for this drawing").wait_for(timeout=PAGE_TIMEOUT_MS)
    page.get_by_role("tab", name="MLP: hidden units").click()
    page.get_by_text("units that push hardest towards").wait_for(timeout=PAGE_TIMEOUT_MS)

    assert page.locator(EXCEPTION).count() == 0
    assert horizontal_overflow(page) <= 0
    name = "desktop" if viewport is DESKTOP else "phone"
    screenshot_whole_page(page, ARTIFACTS / f"insight-draw-inside-{name}.png", viewport)
    page.close()


def test_the_compare_page_draws_robustness_and_the_draw_page_finds_each_models_smallest_flip(
    browser, server_url, titles
):
    from digitlab.insight.robustness import load_robustness

    try:
        load_robustness()
    except DigitlabError as error:
        pytest.skip(f"No robustness figures for the models in use: {error}")
    page = open_page(browser, f"{server_url}/compare", PAGES["compare"][1], DESKTOP)
    page.get_by_role("heading", name="Robustness").scroll_into_view_if_needed()
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll(".js-plotly-plot")).some(plot =>
            plot._fullData && plot._fullData.some(trace => trace.type === "heatmap" && trace.y[1] === "rotate"))""",
        timeout=PAGE_TIMEOUT_MS,
    )
    assert page.locator(EXCEPTION).count() == 0
    page.close()

    page = seven_with_toggle_on(browser, server_url, DESKTOP, "How small a change flips it")
    page.get_by_text(re.compile(r"eps \d\.\d{3}")).first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    found = page.locator(MARKDOWN, has_text=re.compile(r"turns \d into \d|no change up to eps")).count()
    assert found == len(titles)
    assert page.locator(EXCEPTION).count() == 0
    screenshot_whole_page(page, ARTIFACTS / "insight-draw-smallest-flips.png", DESKTOP)
    page.close()
