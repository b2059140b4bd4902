"""The Draw page on a phone held upright (390x844) in a real browser: nothing cut off, nothing sticking out.

Uses the server and browser fixtures of ``tests/browser/conftest.py``; its screenshots go to
``test-artifacts/phone-draw-why.png``, ``phone-draw-first-screen.png``, ``phone-draw-digit-picker.png`` and
``phone-draw-number-strip.png``.
"""

import pytest

from tests.browser.dashboard import (
    ARTIFACTS,
    CANVAS,
    PHONE,
    PREDICTION_TIMEOUT_MS,
    choose_whole_number,
    draw,
    horizontal_overflow,
    open_draw_page,
    trained_manifest_or_skip,
    wait_until_idle,
)

pytestmark = pytest.mark.browser

# The visible part of the canvas's toolbar, without the transparent padding round it.
CANVAS_TOOLBAR = ".dc-toolbar-card"
MAIN_BLOCK = '[data-testid="stMainBlockContainer"]'
ALERT = '[data-testid="stAlert"]'
TOGGLE = '[data-testid="stCheckbox"]'
RADIO_GROUP = '[data-testid="stRadio"]'
SAVE_FORM = f'{MAIN_BLOCK} [data-testid="stForm"]'
SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]]


def clipped_parts(element) -> list[str]:
    """The element and descendants with text wider than their box: text cut off or hidden behind an ellipsis.

    Parts without text, such as the switch's visually hidden input, do not count.
    """
    return element.evaluate(
        """root => [root, ...root.querySelectorAll('*')]
            .filter(part => part.textContent.trim() && part.scrollWidth > part.clientWidth + 1)
            .map(part => `${part.tagName} ${part.scrollWidth}>${part.clientWidth}: ${part.textContent}`)"""
    )


def column_edges(page) -> tuple[float, float]:
    """The left and right edge of the page's content column, inside its padding."""
    return tuple(
        page.evaluate(
            f"""() => {{
                const block = document.querySelector('{MAIN_BLOCK}');
                const box = block.getBoundingClientRect(), style = getComputedStyle(block);
                return [box.left + parseFloat(style.paddingLeft), box.right - parseFloat(style.paddingRight)];
            }}"""
        )
    )


def test_the_why_this_answer_toggle_is_readable_in_full_on_a_phone(browser, server_url):
    trained_manifest_or_skip()
    page, canvas = open_draw_page(browser, server_url, PHONE)

    draw(page, canvas, SEVEN)
    toggle = page.locator(TOGGLE, has_text="Why this answer").first
    toggle.wait_for(timeout=PREDICTION_TIMEOUT_MS)
    wait_until_idle(page)
    toggle.scroll_into_view_if_needed()

    clipped = clipped_parts(toggle)
    label = toggle.locator("label").first.bounding_box()
    left, right = column_edges(page)
    page.screenshot(path=ARTIFACTS / "phone-draw-why.png")
    page.close()
    assert not clipped, f"the toggle's label is cut off: {clipped}"
    assert left - 1 <= label["x"] and label["x"] + label["width"] <= right + 1, f"the toggle sticks out: {label}"


def test_the_models_answer_shows_on_a_phones_first_screen_when_the_pen_lifts(browser, server_url):
    trained_manifest_or_skip()
    page, canvas = open_draw_page(browser, server_url, PHONE)

    draw(page, canvas, SEVEN)
    verdict = page.locator(f"{MAIN_BLOCK} {ALERT}").first
    verdict.wait_for(timeout=PREDICTION_TIMEOUT_MS)
    wait_until_idle(page)
    box = verdict.bounding_box()
    text = verdict.inner_text()
    page.screenshot(path=ARTIFACTS / "phone-draw-first-screen.png")
    page.close()
    verdicts = ("read", "lean", "disagree", "does not look like a digit")
    assert any(verdict in text for verdict in verdicts), (
        f"the first message under the canvas is not the verdict: {text}"
    )
    assert box["y"] + box["height"] <= PHONE["height"], (
        f"the answer ends {box['y'] + box['height']:.0f} px down a {PHONE['height']} px screen"
    )


def test_every_digit_of_the_save_forms_picker_can_be_seen_and_tapped_on_a_phone(browser, server_url):
    trained_manifest_or_skip()
    page, canvas = open_draw_page(browser, server_url, PHONE)

    draw(page, canvas, SEVEN)
    form = page.locator(SAVE_FORM).first
    form.wait_for(timeout=PREDICTION_TIMEOUT_MS)
    wait_until_idle(page)
    form.scroll_into_view_if_needed()
    digits = form.get_by_role("radiogroup").first.get_by_role("radio")
    left, right = column_edges(page)
    # Each digit's box, and whether the screen shows the digit itself at the box's centre: an option scrolled out of
    # its row, or off the screen, has a box but nothing there to tap.
    options = digits.evaluate_all(
        """options => options.map(option => {
            const box = option.getBoundingClientRect(), x = box.left + box.width / 2, y = box.top + box.height / 2;
            return {text: option.innerText.trim(), left: box.left, right: box.right,
                    shown: option.contains(document.elementFromPoint(x, y))};
        })"""
    )
    nine_box = digits.filter(has_text="9").first.bounding_box()
    # A tap where the 9 shows, without Playwright's scrolling into view, must choose it.
    page.mouse.click(nine_box["x"] + nine_box["width"] / 2, nine_box["y"] + nine_box["height"] / 2)
    page.wait_for_timeout(300)
    chosen = [option.inner_text().strip() for option in form.locator('[role="radio"][aria-checked="true"]').all()]
    page.screenshot(path=ARTIFACTS / "phone-draw-digit-picker.png")
    page.close()
    assert [option["text"] for option in options] == [str(digit) for digit in range(10)]
    outside = [option for option in options if option["left"] < left - 1 or option["right"] > right + 1]
    assert not outside, f"digits stick out of the {left:.0f}-{right:.0f} px column: {outside}"
    assert all(option["right"] <= PHONE["width"] for option in options), f"digits run off the screen: {options}"
    hidden = [option["text"] for option in options if not option["shown"]]
    assert not hidden, f"digits cannot be seen where they are: {hidden}"
    assert chosen == ["9"], f"a tap on the 9 chose {chosen}"


def test_whole_number_mode_starts_with_a_strip_that_fits_a_phone(browser, server_url):
    trained_manifest_or_skip()
    page, _ = open_draw_page(browser, server_url, PHONE)

    choose_whole_number(page)
    canvas = page.locator(CANVAS).first
    canvas.wait_for()
    box = canvas.bounding_box()
    left, right = column_edges(page)
    # The canvas's toolbar shows while the pen is over the canvas, as after a tap on a phone.
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    # It slides into place once shown.
    wait_until_idle(page)
    toolbar = page.locator(CANVAS_TOOLBAR).first.bounding_box()
    strip_choice = page.locator(RADIO_GROUP, has_text="Strip size").first.bounding_box()

    overflow = horizontal_overflow(page)
    page.screenshot(path=ARTIFACTS / "phone-draw-number-strip.png")
    page.close()
    assert box["width"] > 2 * box["height"], f"the number canvas is not a strip: {box}"
    assert left - 1 <= box["x"] and box["x"] + box["width"] <= right + 1, (
        f"the {box['width']:.0f} px strip does not fit the {right - left:.0f} px column"
    )
    assert overflow <= 1, f"the page is {overflow} px wider than the phone"
    assert toolbar["y"] >= strip_choice["y"] + strip_choice["height"], "the canvas's toolbar covers the strip choice"
