"""The Draw page's whole-number mode in a real browser: a short number written with real mouse moves.

Uses the server and browser fixtures of ``tests/browser/conftest.py``; its screenshots
go to ``test-artifacts/draw-number-desktop.png`` and ``draw-number-phone.png``.
"""

import math

import pytest

from tests.browser.dashboard import (
    ARTIFACTS,
    CANVAS,
    DESKTOP,
    MAIN,
    PHONE,
    PREDICTION_TIMEOUT_MS,
    choose_strip,
    choose_whole_number,
    draw,
    horizontal_overflow,
    open_draw_page,
    screenshot_whole_page,
    trained_manifest_or_skip,
    wait_until_idle,
)

pytestmark = pytest.mark.browser

DIGIT_CARDS = f'{MAIN} [data-testid="stMetric"]'
# "107" across the wide canvas, as fractions of its width and height: a stroke, an oval and a 7.
NUMBER = "107"
# The 0 is drawn as one closed oval, a little past its starting point as a hand would.
OVAL = [(0.45 + 0.07 * math.sin(step / 8 * math.pi), 0.5 - 0.36 * math.cos(step / 8 * math.pi)) for step in range(18)]
STROKES = [
    [(0.22, 0.14), (0.22, 0.86)],
    OVAL,
    [(0.62, 0.18), (0.78, 0.18), (0.67, 0.86)],
]


def digit_cards(page):
    """The "Digit n" cards, in order."""
    cards = page.locator(DIGIT_CARDS)
    return [
        cards.nth(position)
        for position in range(cards.count())
        if cards.nth(position).locator('[data-testid="stMetricLabel"]').inner_text().strip().startswith("Digit ")
    ]


def shown_digits(page) -> list[str]:
    """The digit of every "Digit n" card, in order, once the cards have appeared."""
    page.wait_for_function(
        f"""n => Array.from(document.querySelectorAll('{DIGIT_CARDS}'))
            .filter(card => card.innerText.startsWith('Digit ')).length === n""",
        arg=len(NUMBER),
        timeout=PREDICTION_TIMEOUT_MS,
    )
    wait_until_idle(page)
    return [card.locator('[data-testid="stMetricValue"]').inner_text().strip() for card in digit_cards(page)]


@pytest.mark.parametrize(
    ("viewport_name", "strip"), [("desktop", "Wide"), ("phone", "Narrow, for phones")], ids=["desktop", "phone"]
)
def test_a_number_written_on_the_strip_is_read_digit_by_digit(browser, server_url, viewport_name, strip):
    trained_manifest_or_skip()
    viewport = DESKTOP if viewport_name == "desktop" else PHONE
    page, _ = open_draw_page(browser, server_url, viewport)

    choose_whole_number(page)
    choose_strip(page, strip)
    canvas = page.locator(CANVAS).first
    canvas.wait_for()
    box = canvas.bounding_box()
    assert box["width"] > 2 * box["height"], f"the number canvas is not a wide strip: {box}"
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], f"the strip sticks out: {box}"

    draw(page, canvas, STROKES)
    digits = shown_digits(page)

    assert page.locator('[data-testid="stException"]').count() == 0
    # Side by side as the digits are written, on a phone too, rather than one above the other.
    card_tops = {round(card.bounding_box()["y"]) for card in digit_cards(page)}
    overflow = horizontal_overflow(page)
    screenshot_whole_page(page, ARTIFACTS / f"draw-number-{viewport_name}.png", viewport)
    page.close()
    assert overflow <= 1, f"the number mode is {overflow} px wider than a {viewport['width']} px screen"
    assert "".join(digits) == NUMBER, f"the drawn {NUMBER} was read as {''.join(digits)}"
    assert len(card_tops) == 1, f"the {len(NUMBER)} digit cards are not in one row: tops at {sorted(card_tops)}"


# A house, a five-pointed star and a smaller house across the wide strip: drawings, not digits.
DRAWINGS = [
    [(0.04, 0.45), (0.04, 0.85), (0.26, 0.85), (0.26, 0.45), (0.04, 0.45)],
    [(0.04, 0.45), (0.15, 0.15), (0.26, 0.45)],
    [(0.36, 0.85), (0.45, 0.15), (0.54, 0.85), (0.32, 0.4), (0.58, 0.4), (0.36, 0.85)],
    [(0.68, 0.5), (0.68, 0.8), (0.88, 0.8), (0.88, 0.5), (0.68, 0.5)],
    [(0.68, 0.5), (0.78, 0.25), (0.88, 0.5)],
]


def test_a_row_of_drawings_on_the_strip_is_not_read_as_a_number(browser, server_url):
    trained_manifest_or_skip()
    page, _ = open_draw_page(browser, server_url, DESKTOP)
    choose_whole_number(page)
    choose_strip(page, "Wide")
    canvas = page.locator(CANVAS).first
    canvas.wait_for()

    draw(page, canvas, DRAWINGS)
    # The page reruns as the strokes arrive; the verdict that counts is the one on the whole drawing.
    wait_until_idle(page)
    page.get_by_text("This does not look like a number").wait_for(timeout=PREDICTION_TIMEOUT_MS)
    wait_until_idle(page)

    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot_whole_page(page, ARTIFACTS / "draw-number-not-digits.png", DESKTOP)
    cards = [card.inner_text() for card in digit_cards(page)]
    other_readings = page.get_by_text("Convolutional network:").first.inner_text()
    page.close()
    assert cards == [], f"the drawings were read as digits: {cards}"
    assert other_readings.strip() == "Convolutional network: no number"
