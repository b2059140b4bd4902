"""The Compare page's confusion matrices: clicking a cell, the test images in it, and handing it to the explorer."""

import streamlit as st

from digitlab.errors import DigitlabError
from digitlab.insight import comparison
from digitlab.insight.explorer import cell_indices, order_indices, predicted_digits, usable_probabilities
from digitlab.manifest import Manifest
from ui import charts, explorer_view, problems, resources
from ui.images import enlarge

CELL_GALLERY_SIZE = 30
# The widgets that say which cell is shown; a click on a matrix sets them, and so can the user directly.
CELL_KEYS = ("cell_model", "cell_true", "cell_predicted")
# The last click seen, so that a rerun does not apply the same click again over a later choice in the selectors.
LAST_CLICK_KEY = "cell_clicked"


def show_confusion_matrices(manifest: Manifest, chosen: list[str], titles: dict[str, str]) -> None:
    """One heat map per chosen model, counts or row shares; a click on a cell selects it below."""
    normalise = st.toggle(
        "Row-normalised (share of each true digit)", key="confusion_normalised", help="Off: image counts."
    )
    matrices = {name: comparison.confusion_matrix(manifest.models[name]) for name in chosen}
    if normalise:
        matrices = {name: comparison.row_normalised(matrix) for name, matrix in matrices.items()}
    # One colour scale for every matrix, so that the same red means the same number of mistakes in each.
    darkest = max(charts.largest_mistake(matrix) for matrix in matrices.values())
    darkest_text = f"{darkest:.1%} of a digit's images" if normalise else f"{darkest:,.0f} images"
    st.caption(
        f"Red cells are mistakes, on one colour scale for all the matrices: the darkest red is {darkest_text}. "
        "Click or tap a cell (or use the selectors below) to see its test images."
    )
    with st.grid(columns=3, min_column_width=330):
        for name, values in matrices.items():
            event = st.plotly_chart(
                charts.confusion_heatmap(
                    values, titles[name], shares=normalise, selected=_selected_cell(name), darkest=darkest
                ),
                on_select="rerun",
                selection_mode="points",
                config=charts.COMPACT_CONFIG,
                key=f"confusion-{name}",
            )
            _follow_click(name, event.selection.points)


def _selected_cell(name: str) -> tuple[int, int] | None:
    if st.session_state.get("cell_model") != name:
        return None
    return st.session_state.get("cell_true", 0), st.session_state.get("cell_predicted", 0)


def _follow_click(name: str, points: list[dict]) -> None:
    """Move the selectors to a newly clicked cell of ``name``'s matrix."""
    cells = [point for point in points if "x" in point and "y" in point]
    clicked = (name, int(cells[0]["y"]), int(cells[0]["x"])) if cells else None
    if clicked and clicked != st.session_state.get(LAST_CLICK_KEY):
        st.session_state[LAST_CLICK_KEY] = clicked
        st.session_state.update(dict(zip(CELL_KEYS, clicked, strict=True)))
        st.rerun()


def show_cell_gallery(manifest: Manifest, chosen: list[str], titles: dict[str, str]) -> None:
    """The selectors for one cell, its test images (surest first) and a way to open them in the explorer."""
    st.subheader("Test images in one cell")
    if st.session_state.get("cell_model") not in chosen:
        # Start on the first model's most common mistake, the most telling cell to look at.
        first_true, first_predicted = comparison.largest_confusion(
            comparison.confusion_matrix(manifest.models[chosen[0]])
        )
        st.session_state.update(dict(zip(CELL_KEYS, (chosen[0], first_true, first_predicted), strict=True)))
    model_column, true_column, predicted_column = st.columns(3)
    model = model_column.selectbox("Model", chosen, format_func=titles.get, key="cell_model")
    true_digit = true_column.selectbox("True digit", list(range(10)), key="cell_true")
    predicted_digit = predicted_column.selectbox("Predicted digit", list(range(10)), key="cell_predicted")
    try:
        test_images, test_labels = resources.mnist("test")
        stored, unusable = usable_probabilities(resources.test_probabilities(), [model], len(test_labels))
    except DigitlabError as error:
        problems.report_data_error(error, "Listing a cell's images")
        return
    if unusable:
        st.warning(unusable[0], icon=":material/warning:")
        return
    probabilities = stored[model]
    indices = cell_indices(test_labels, predicted_digits(stored)[model], true_digit, predicted_digit)
    indices = order_indices(indices, probabilities.max(axis=1), "confidence")
    kind = "read correctly" if true_digit == predicted_digit else "mistaken"
    images_word = "test image" if len(indices) == 1 else "test images"
    shown_part = f"; showing the {min(len(indices), CELL_GALLERY_SIZE)} it is surest of" if len(indices) else ""
    st.markdown(
        f"**{len(indices):,}** {images_word} of a **{true_digit}** that {titles[model]} reads as "
        f"**{predicted_digit}** ({kind}){shown_part}."
    )
    gallery = indices[:CELL_GALLERY_SIZE]
    if len(gallery):
        st.image(
            [enlarge(test_images[index], 3) for index in gallery],
            caption=[f"#{index} · {probabilities[index].max():.0%}" for index in gallery],
        )
    if (
        true_digit != predicted_digit
        and len(indices)
        and st.button("Open these mistakes in the explorer", icon=":material/manage_search:", type="primary")
    ):
        explorer_view.open_cell(explorer_view.Cell(model, true_digit, predicted_digit))
