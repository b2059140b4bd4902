"""What the Draw page shows for a whole number: the image with a box round each digit, and every digit's reading.

The most accurate loaded model (by the test accuracy its manifest records)
reads the number and decides where touching digits are cut; the other
models read the same pieces, and their numbers are listed beneath.
"""

from typing import Any

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from digitlab.errors import DigitlabError
from digitlab.imaging.segment import (
    NumberDigit,
    NumberReading,
    Segment,
    digit_like,
    displayed_gray,
    read_number,
    segment_digits,
)
from digitlab.recognise import best_first
from ui import problems, resources
from ui.images import enlarge

# The annotated image is shown at most this wide; larger uploads are scaled down before the boxes are drawn.
DISPLAY_WIDTH = 900
SURE_COLOUR = (0, 158, 115)
UNSURE_COLOUR = (230, 159, 0)
NOT_A_DIGIT_COLOUR = (140, 140, 140)
# The band above the image that holds the readings is transparent, so it takes the page's colour in either theme.
TRANSPARENT = (0, 0, 0, 0)
# The readings are a third of the tallest box high, within these limits: legible on a phone's strip, and on a large
# upload of small digits not so wide that neighbouring readings run into each other.
MIN_LABEL_SIZE, MAX_LABEL_SIZE = 14, 40
# Digit cards per row on a wide screen, and the narrowest a card gets (border and padding included) before the grid
# puts fewer in a row: three fit the 358 px column of a phone 390 px wide. The 28x28 input fits inside a card.
CARDS_PER_ROW, CARD_WIDTH, CARD_IMAGE_WIDTH = 8, 108, 76


def models_by_accuracy(models: dict[str, Any]) -> dict[str, Any]:
    """The models, the one with the best recorded test accuracy first (it decides the cuts)."""
    return best_first(models, {name: entry.accuracy for name, entry in resources.manifest().models.items()})


def annotated_image(source, digits: list[NumberDigit]) -> Image.Image:
    """The image as the models saw it (grayscale, transparency flattened), a box round each digit, its reading above."""
    gray, size = displayed_gray(source)
    picture = Image.fromarray(np.clip(np.round(gray * 255), 0, 255).astype(np.uint8)).resize(size)
    scale = min(1.0, DISPLAY_WIDTH / size[0])
    if scale < 1.0:
        picture = picture.resize((max(1, round(size[0] * scale)), max(1, round(size[1] * scale))))
    boxes = [tuple(round(value * scale) for value in entry.box) for entry in digits]
    # The readings stand in a band of their own above the image: written inside a box, they covered its strokes.
    label_size = min(MAX_LABEL_SIZE, max(MIN_LABEL_SIZE, round(max((box[3] for box in boxes), default=0) / 3)))
    band = round(1.4 * label_size)
    framed = Image.new("RGBA", (picture.width, picture.height + band), TRANSPARENT)
    framed.paste(picture.convert("RGBA"), (0, band))
    pen = ImageDraw.Draw(framed)
    line = max(2, round(min(picture.size) / 100))
    font = ImageFont.load_default(size=label_size)
    for entry, (left, top, width, height) in zip(digits, boxes, strict=True):
        colour, label = reading_mark(entry)
        pen.rectangle([left, band + top, left + width - 1, band + top + height - 1], outline=colour, width=line)
        # Centred over its box, but never so near the edge that part of it is cut off.
        half = pen.textlength(label, font=font) / 2
        centre = min(max(left + width / 2, half), framed.width - half)
        pen.text((centre, band / 2), label, fill=colour, font=font, anchor="mm")
    return framed


def reading_mark(entry: NumberDigit) -> tuple[tuple[int, int, int], str]:
    """The colour of a digit's box and the label above it: its reading, or "?" for a piece that is not a digit."""
    if entry.not_a_digit:
        return NOT_A_DIGIT_COLOUR, "?"
    return (UNSURE_COLOUR if entry.low_confidence else SURE_COLOUR), str(entry.digit)


def show_verdict(lead: NumberReading, title: str) -> None:
    if not lead.number:
        st.warning(
            "**This does not look like a number**: too few of its pieces look like digits.", icon=":material/help:"
        )
        return
    skipped = sum(entry.not_a_digit for entry in lead.digits)
    if skipped:
        marks = "mark that does not look like a digit" if skipped == 1 else "marks that do not look like digits"
        st.info(f"Left out {skipped} {marks} (grey boxes).", icon=":material/filter_alt:")
    unsure = [
        position
        for position, entry in enumerate(lead.digits, start=1)
        if entry.low_confidence and not entry.not_a_digit
    ]
    if not unsure:
        st.success(f"{title} reads **{lead.number}**.", icon=":material/check_circle:")
        return
    places = ", ".join(str(position) for position in unsure)
    which = "digit" if len(unsure) == 1 else "digits"
    st.warning(
        f"{title} reads **{lead.number}**, but is unsure of {which} {places}: check the boxes marked in orange.",
        icon=":material/warning:",
    )


def show_digit_cards(segments: list[Segment], lead: NumberReading) -> None:
    """One card per digit: the 28x28 input the models received, the digit and its confidence.

    The cards wrap in a grid: eight to a row on a wide screen, three on a phone; longer numbers take further rows.
    """
    grid = st.grid(CARDS_PER_ROW, min_column_width=CARD_WIDTH, gap="xsmall", border=True)
    for position, (segment, entry) in enumerate(zip(segments, lead.digits, strict=True), start=1):
        with grid.cell():
            if entry.not_a_digit:
                st.markdown(f"Piece {position}  \n:gray[not a digit (closest: {entry.digit})]")
                st.image(enlarge(segment.model_input, 3), width=CARD_IMAGE_WIDTH)
                continue
            st.metric(f"Digit {position}", entry.digit)
            # To a tenth of a percent, as each model's card for one digit gives it.
            confidence = f"{entry.confidence:.1%}"
            if entry.low_confidence:
                st.markdown(f":orange[**{confidence}** · low confidence]")
            else:
                st.markdown(f"confidence **{confidence}**")
            st.image(enlarge(segment.model_input, 3), width=CARD_IMAGE_WIDTH)


def show_other_readings(readings: list[NumberReading], titles: dict[str, str]) -> None:
    lead = readings[0].number
    lines = [
        f"- {titles.get(reading.model, reading.model)}: "
        + (f"**{reading.number}**" if reading.number else "no number")
        + ("" if reading.number == lead else " (differs)")
        for reading in readings[1:]
    ]
    if lines:
        st.markdown("What the other models read in the same pieces:\n" + "\n".join(lines))


def digit_count(source, models: dict[str, Any]) -> int:
    """How many digits a whole-number reading finds in ``source``: pieces the not-a-digit check refuses do not count.

    An image it cannot read counts as none; the one-digit reading says why.
    """
    screen, _ = resources.screen()
    try:
        segments = segment_digits(source, next(iter(models_by_accuracy(models).values())), resources.number_splitter())
    except DigitlabError:
        return 0
    looks_like_digits = digit_like(segments, screen)
    return len(segments) if looks_like_digits is None else sum(looks_like_digits)


def show_number(source, models: dict[str, Any], titles: dict[str, str]) -> None:
    """Segment ``source`` into digits and show the number, or why it holds none."""
    screen, _ = resources.screen()
    splitter = resources.number_splitter()
    number = problems.read_image_or_explain(lambda: read_number(source, models_by_accuracy(models), screen, splitter))
    if number is None:
        return
    segments, readings = number
    lead = readings[0]
    show_verdict(lead, titles.get(lead.model, lead.model))
    st.image(
        annotated_image(source, lead.digits),
        caption="The digits found, read left to right (orange: low confidence; grey: not a digit)",
    )
    show_digit_cards(segments, lead)
    show_other_readings(readings, titles)
