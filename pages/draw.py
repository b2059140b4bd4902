"""Draw a digit (or upload a picture of one) and watch every model read it."""

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from digitlab.imaging.preprocess import preprocess
from ui import problems, resources
from ui.feedback import show_save_form
from ui.insight_views import show_why
from ui.layer_view import show_inside
from ui.number_view import digit_count, show_number
from ui.prediction_view import show_predictions
from ui.robustness_view import show_smallest_flips
from ui.sidebar import route_through_app

route_through_app()

CANVAS_SIZE = 280
# In "whole number" mode the canvas is a strip wide enough for several digits side by side. The narrow one, the
# first and so the default, fits the page's column on a phone held upright (328 px wide on a phone 360 px wide):
# Streamlit cannot tell the page how wide the screen is, a strip wider than the column sticks out past the screen's
# edge, and on a wide screen the wide strip is one click away (and kept for the session).
NUMBER_CANVAS_SIZES = {"Narrow, for phones": (320, 120), "Wide": (720, 240)}
ONE_DIGIT, WHOLE_NUMBER = "One digit", "A whole number"
UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"]
# Each canvas's latest drawing and what it started with on this visit, kept for the session by canvas key, and the
# page's choices (what to read, the strip's size), which Streamlit forgets while another page is shown.
KEPT_DRAWINGS, CANVAS_STARTS, KEPT_CHOICES = "kept-drawings", "canvas-starts", "kept-draw-choices"

# Filled once the reading mode below is known, so the heading says what the page reads.
heading = st.container()

manifest = problems.trained_manifest_or_stop()
titles = resources.model_titles(manifest)
with st.spinner("Loading the models (the first time takes a few seconds)..."):
    models, failures, first_attempt = resources.load_models()
if first_attempt:
    # The sidebar was drawn before the models were loaded; one more run shows them as loaded.
    st.rerun()
for name, message in failures.items():
    st.warning(f"**{titles[name]} is not available.** {message}", icon=":material/warning:")
if not models:
    st.error("No model could be loaded, so nothing can be recognised. Retrain with `python -m digitlab train`.")
    st.stop()


def read_as_whole_number() -> None:
    st.session_state["draw_mode"] = WHOLE_NUMBER


def offer_whole_number(source, key: str) -> None:
    """Say so when one-digit mode is given several digits side by side, and offer to read them as a number."""
    count = digit_count(source, models)
    if count < 2:
        return
    st.warning(
        f"**This looks like {count} digits side by side.** One digit reads an image as a single digit; "
        f"**{WHOLE_NUMBER}** reads each digit on its own.",
        icon=":material/pin:",
    )
    st.button("Read it as a whole number", icon=":material/pin:", on_click=read_as_whole_number, key=f"number-{key}")


def show_result(source, key: str) -> None:
    """Preprocess ``source``, show every model's answer and offer to save it, or why it holds no digit."""
    offer_whole_number(source, key)
    model_input = problems.read_image_or_explain(lambda: preprocess(source))
    if model_input is None:
        return
    predictions, verdict = show_predictions(model_input, models, titles, key=key)
    # A short label, so that it fits on one line beside the switch on a phone; the help says the rest.
    if st.toggle(
        "Why this answer: heat maps",
        key=f"why-{key}",
        help="Heat maps over the 28x28 input of the pixels that drove each model's answer.",
    ):
        show_why(model_input, models, titles, {prediction.model: prediction.digit for prediction in predictions})
    if st.toggle(
        "Inside the models",
        key=f"inside-{key}",
        help="What each layer makes of your drawing: the CNN's feature maps, the MLP's hidden units and the SVM's "
        "support vectors.",
    ):
        show_inside(model_input, models, key)
    if st.toggle(
        "How small a change flips it",
        key=f"flip-{key}",
        help="The smallest change to the pixels that an attack finds to make each model read another digit.",
    ):
        show_smallest_flips(model_input, models, titles, key)
    show_save_form(source, model_input, predictions, key=key, is_digit=verdict is None or verdict.is_digit)


def starting_drawing(key: str) -> dict | None:
    """What the canvas ``key`` starts with: the drawing kept from an earlier visit when it is drawn afresh.

    A canvas shown on the previous run keeps what it started with, since a changed starting drawing would redraw
    the canvas, dropping its undo history and any stroke not yet sent.
    """
    starts = st.session_state.setdefault(CANVAS_STARTS, {})
    if key not in st.session_state:
        kept = st.session_state.setdefault(KEPT_DRAWINGS, {}).get(key)
        starts[key] = kept["json"] if kept else None
    return starts[key]


def kept_image(key: str, drawing) -> np.ndarray | None:
    """The canvas's image, kept for the session; a canvas drawn afresh has sent none yet, so the kept one is used."""
    kept = st.session_state.setdefault(KEPT_DRAWINGS, {})
    if drawing.image_data is None:
        return kept[key]["image"] if key in kept else None
    kept[key] = {"json": drawing.json_data, "image": drawing.image_data}
    return drawing.image_data


def forget_drawing(key: str) -> None:
    for store in (KEPT_DRAWINGS, CANVAS_STARTS):
        st.session_state.setdefault(store, {}).pop(key, None)


def clear_canvas(key: str, clears: int) -> None:
    """Forget the canvas ``key``'s drawing and give the next run a fresh canvas under a new key."""
    forget_drawing(key)
    st.session_state["canvas_clears"] = clears + 1


def kept_choice(key: str) -> str:
    """``key`` for a widget whose choice is kept for the session: restored after a visit to another page."""
    kept = st.session_state.setdefault(KEPT_CHOICES, {})
    if key in st.session_state:
        kept[key] = st.session_state[key]
    elif key in kept:
        st.session_state[key] = kept[key]
    return key


def holds_ink(image: np.ndarray) -> bool:
    """Whether a canvas's RGBA image has any visible stroke (the pen is white on a black or transparent canvas)."""
    return bool(image[..., :3].max(axis=-1)[image[..., 3] > 0].any())


mode = st.radio(
    "What to read",
    [ONE_DIGIT, WHOLE_NUMBER],
    horizontal=True,
    key=kept_choice("draw_mode"),
    help="A whole number (a postcode, an amount) is split into its digits, and each digit is read on its own.",
)
whole_number = mode == WHOLE_NUMBER
if whole_number:
    heading.title("Read a whole number")
    heading.caption(
        "Every trained model reads each digit of your number. Write the digits side by side, apart or just touching."
    )
else:
    heading.title("Draw a digit")
    # One line on a phone, which leaves room for the models' answer below the canvas.
    heading.caption("Draw it large and centred; every model reads it at once.")

draw_tab, upload_tab = st.tabs([":material/draw: Draw", ":material/upload: Upload an image"])

with draw_tab:
    # A whole number's strip needs the full width, so its result goes underneath.
    if whole_number:
        canvas_column, result_column = st.container(), st.container()
    else:
        canvas_column, result_column = st.columns([2, 3], gap="medium")
    with canvas_column:
        canvas_width, canvas_height = CANVAS_SIZE, CANVAS_SIZE
        if whole_number:
            strip = st.radio("Strip size", list(NUMBER_CANVAS_SIZES), horizontal=True, key=kept_choice("number_strip"))
            canvas_width, canvas_height = NUMBER_CANVAS_SIZES[strip]
        # A new key gives a fresh, empty canvas; the toolbar on the canvas (on hover) also has undo and reset.
        clears = st.session_state.setdefault("canvas_clears", 0)
        canvas_key = f"canvas-{canvas_width}x{canvas_height}-{clears}"
        # The pen and the button share a row even on a phone, where columns would stack, and the canvas's hint is
        # the button's help: with both below the canvas, a phone showed the models' answer only after scrolling.
        with st.container(horizontal=True, vertical_alignment="bottom"):
            stroke_width = st.slider("Pen width", min_value=8, max_value=36, value=20, step=2)
            st.button(
                "Clear",
                icon=":material/ink_eraser:",
                on_click=clear_canvas,
                args=(canvas_key, clears),
                help="Empties the canvas. Hover over or tap the canvas for undo, redo and the bin; its pencil switches "
                "to moving strokes, click it again to draw.",
            )
        # The canvas's toolbar (undo, redo, the bin), shown on hover or after a tap, sits above the canvas's top
        # edge; the space keeps it off the widget above, whose right end it would otherwise cover.
        st.space("xsmall")
        drawing = st_canvas(
            stroke_width=stroke_width,
            stroke_color="#FFFFFF",
            background_color="#000000",
            update_streamlit=True,
            height=canvas_height,
            width=canvas_width,
            drawing_mode="freedraw",
            initial_drawing=starting_drawing(canvas_key),
            return_image_data=True,
            key=canvas_key,
        )
        image = kept_image(canvas_key, drawing)
    with result_column:
        if image is None:
            st.info("Draw a digit on the black square: the models answer as soon as you lift the pen.")
        elif not holds_ink(image):
            st.info(
                "The canvas is empty: write a number, digits side by side, to see what the models read."
                if whole_number
                else "The canvas is empty: draw a digit to see what the models read."
            )
        elif whole_number:
            show_number(image, models, titles)
        else:
            show_result(image, key="drawn")

with upload_tab:
    upload = st.file_uploader(
        "A picture of a handwritten digit (or of a number, in whole-number mode)",
        type=UPLOAD_TYPES,
        help="Dark ink on light paper or light ink on a dark background both work; the digit is cropped and centred.",
    )
    if upload is None and whole_number:
        st.info("Upload a photo or scan of a number, the same way `python -m digitlab predict --multi` reads files.")
    elif upload is None:
        st.info("Upload a photo or scan of a single digit, the same way `python -m digitlab predict` reads files.")
    elif whole_number:
        show_number(upload.getvalue(), models, titles)
    else:
        show_result(upload.getvalue(), key="uploaded")
