"""Draw a digit (or upload a picture of one) and watch every model read it."""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from digitlab.imaging.preprocess import preprocess
from ui import problems, resources
from ui.feedback import show_save_form
from ui.insight_views import show_why
from ui.number_view import show_number
from ui.prediction_view import show_predictions

CANVAS_SIZE = 280
# In "whole number" mode the canvas is a strip wide enough for several digits side by side; the narrow
# one fits a phone held upright (390 px wide or more).
NUMBER_CANVAS_SIZES = {"Wide": (720, 240), "Narrow, for phones": (360, 120)}
ONE_DIGIT, WHOLE_NUMBER = "One digit", "A whole number"
UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"]

st.title("Draw a digit")
st.caption("Every trained model reads your digit at once. Draw large and centred, like on a sheet of squared paper.")

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


def show_result(source, key: str, empty_hint: str) -> None:
    """Preprocess ``source``, show every model's answer and offer to save it, or a hint when it holds no digit."""
    model_input = problems.read_image_or_explain(lambda: preprocess(source), empty_hint)
    if model_input is None:
        return
    predictions, verdict = show_predictions(model_input, models, titles, key=key)
    if st.toggle("Why this answer: heat maps of the pixels that drove each model", key=f"why-{key}"):
        show_why(model_input, models, titles)
    show_save_form(source, model_input, predictions, key=key, is_digit=verdict is None or verdict.is_digit)


mode = st.radio(
    "What to read",
    [ONE_DIGIT, WHOLE_NUMBER],
    horizontal=True,
    key="draw_mode",
    help="A whole number (a postcode, an amount) is split into its digits, and each digit is read on its own.",
)
whole_number = mode == WHOLE_NUMBER

draw_tab, upload_tab = st.tabs([":material/draw: Draw", ":material/upload: Upload an image"])

with draw_tab:
    # A whole number's strip needs the full width, so its result goes underneath.
    if whole_number:
        canvas_column, result_column = st.container(), st.container()
    else:
        canvas_column, result_column = st.columns([2, 3], gap="medium")
    with canvas_column:
        stroke_width = st.slider("Pen width", min_value=8, max_value=36, value=20, step=2)
        canvas_width, canvas_height = CANVAS_SIZE, CANVAS_SIZE
        if whole_number:
            strip = st.radio("Strip size", list(NUMBER_CANVAS_SIZES), horizontal=True, key="number_strip")
            canvas_width, canvas_height = NUMBER_CANVAS_SIZES[strip]
        # A new key gives a fresh, empty canvas; the toolbar on the canvas (on hover) also has undo and reset.
        clears = st.session_state.setdefault("canvas_clears", 0)
        drawing = st_canvas(
            stroke_width=stroke_width,
            stroke_color="#FFFFFF",
            background_color="#000000",
            update_streamlit=True,
            height=canvas_height,
            width=canvas_width,
            drawing_mode="freedraw",
            return_image_data=True,
            key=f"canvas-{canvas_width}x{canvas_height}-{clears}",
        )
        if st.button("Clear the canvas", icon=":material/ink_eraser:"):
            st.session_state["canvas_clears"] = clears + 1
            st.rerun()
        st.caption("Hover over the canvas for undo, redo and reset.")
    with result_column:
        if drawing.image_data is None:
            st.info("Draw a digit on the black square: the models answer as soon as you lift the pen.")
        elif whole_number:
            show_number(
                drawing.image_data,
                models,
                titles,
                empty_hint="The canvas is empty: write a number, digits side by side, to see what the models read.",
            )
        else:
            show_result(
                drawing.image_data,
                key="drawn",
                empty_hint="The canvas is empty or holds too little ink: draw a digit to see what the models read.",
            )

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
        show_number(upload.getvalue(), models, titles, empty_hint="No digit found in this image: it looks blank.")
    else:
        show_result(upload.getvalue(), key="uploaded", empty_hint="No digit found in this image: it looks blank.")
