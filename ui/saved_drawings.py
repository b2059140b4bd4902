"""The My digits page's pieces: filters, the saved drawings with relabel and delete, accuracy, and export."""

import functools

import pandas as pd
import streamlit as st

from digitlab.errors import DigitlabError
from digitlab.lab.feedback import (
    ANY_MODEL,
    CSV_NAME,
    DIGITS,
    IDX_IMAGES_NAME,
    IDX_LABELS_NAME,
    SOURCES,
    DrawingFilter,
    FeedbackStore,
)
from ui import charts, resources
from ui.images import enlarge

PAGE_SIZE = 12
COLUMNS = 4
NOTICE_KEY = "my-digits-notice"
# The drawing whose Delete button was clicked: it is deleted only once the user confirms.
CONFIRM_DELETE_KEY = "my-digits-confirm-delete"
# The export's files and the format each belongs to.
EXPORT_FILES = {IDX_IMAGES_NAME: "idx", IDX_LABELS_NAME: "idx", CSV_NAME: "csv"}


def model_titles() -> dict[str, str]:
    """Each model's title from the manifest; without a readable manifest, models go by their registry names."""
    try:
        return resources.model_titles(resources.manifest())
    except DigitlabError:
        return {}


def counted(count: int, noun: str) -> str:
    """``1 saved drawing``, ``3 saved drawings``."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def filter_controls(models: list[str], titles: dict[str, str]) -> DrawingFilter:
    """Widgets for the digits, sources and misreading model to show; empty choices keep everything."""
    digit_column, source_column, model_column = st.columns([3, 1, 1])
    # A multiselect rather than pills: ten pills do not fit across a phone.
    labels = digit_column.multiselect("Digits", DIGITS, placeholder="every digit", key="filter-digits")
    # Both sources start chosen, as every drawing is shown: pills with none chosen looked like a filter left unset.
    sources = source_column.pills(
        "Source", SOURCES, selection_mode="multi", default=list(SOURCES), key="filter-sources"
    )
    choices = [None, ANY_MODEL, *models]
    names = {None: "every drawing", ANY_MODEL: "any model", **{model: titles.get(model, model) for model in models}}
    misread_by = model_column.selectbox(
        "Misread by", choices, format_func=lambda choice: names[choice], key="filter-misread"
    )
    return DrawingFilter(labels=tuple(labels), sources=tuple(sources), misread_by=misread_by)


def _relabel(store: FeedbackStore, drawing_id: int, widget_key: str) -> None:
    try:
        store.relabel(drawing_id, st.session_state[widget_key])
    except DigitlabError as error:
        st.session_state[NOTICE_KEY] = ("error", str(error))
    else:
        st.session_state[NOTICE_KEY] = (
            "success",
            f"Drawing #{drawing_id} is now labelled {st.session_state[widget_key]}.",
        )


def _ask_to_delete(drawing_id: int) -> None:
    st.session_state[CONFIRM_DELETE_KEY] = drawing_id


def _keep() -> None:
    st.session_state.pop(CONFIRM_DELETE_KEY, None)


def _delete(store: FeedbackStore, drawing_id: int) -> None:
    st.session_state.pop(CONFIRM_DELETE_KEY, None)
    try:
        store.delete(drawing_id)
    except DigitlabError as error:
        st.session_state[NOTICE_KEY] = ("error", str(error))
    else:
        st.session_state[NOTICE_KEY] = ("success", f"Drawing #{drawing_id} was deleted.")


def show_notice() -> None:
    """What the last relabel or delete did, shown once."""
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice is not None:
        kind, message = notice
        (st.error if kind == "error" else st.success)(message)


def _reading_line(drawing, titles: dict[str, str]) -> str:
    parts = []
    for model, prediction in drawing.predictions.items():
        mark = "✓" if prediction.digit == drawing.label else "✗"
        parts.append(f"{mark} {titles.get(model, model)}: {prediction.digit} ({prediction.confidence:.0%})")
    return "  \n".join(parts)


def show_drawing_card(store: FeedbackStore, drawing, titles: dict[str, str]) -> None:
    with st.container(border=True):
        original_column, input_column = st.columns(2)
        try:
            original_column.image(store.original_png(drawing.id), caption="as saved", width=84)
        except DigitlabError:
            original_column.caption("original unavailable")
        input_column.image(enlarge(drawing.model_input, 3), caption="model input", width=84)
        st.markdown(f"**#{drawing.id}** · {drawing.source} · {drawing.saved_at[:16].replace('T', ' ')} UTC")
        st.caption(_reading_line(drawing, titles))
        widget_key = f"relabel-{drawing.id}-{drawing.label}"
        st.selectbox(
            "Label",
            DIGITS,
            index=drawing.label,
            key=widget_key,
            on_change=_relabel,
            args=(store, drawing.id, widget_key),
        )
        if st.session_state.get(CONFIRM_DELETE_KEY) == drawing.id:
            _confirm_delete(store, drawing.id)
        else:
            st.button(
                "Delete",
                key=f"delete-{drawing.id}",
                icon=":material/delete:",
                on_click=_ask_to_delete,
                args=(drawing.id,),
            )


def _confirm_delete(store: FeedbackStore, drawing_id: int) -> None:
    """The question a Delete click asks: the drawing and its readings go for good, so one slip must not lose them."""
    st.warning(f"Delete drawing #{drawing_id} and its readings? This cannot be undone.", icon=":material/warning:")
    delete_column, keep_column = st.columns(2)
    delete_column.button(
        "Delete",
        key=f"confirm-delete-{drawing_id}",
        icon=":material/delete_forever:",
        type="primary",
        on_click=_delete,
        args=(store, drawing_id),
    )
    keep_column.button("Keep", key=f"keep-{drawing_id}", on_click=_keep)


def show_drawings(store: FeedbackStore, filters: DrawingFilter, titles: dict[str, str]) -> None:
    """The filtered drawings, newest first, a page at a time."""
    total = store.count(filters)
    if not total:
        st.info("No saved drawing matches these filters.", icon=":material/filter_alt_off:")
        return
    pages = -(-total // PAGE_SIZE)
    page = 1
    if pages > 1:
        page = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, key="drawings-page")
    st.caption(f"{counted(total, 'matching drawing')}, newest first.")
    drawings = store.drawings(filters, limit=PAGE_SIZE, offset=(int(page) - 1) * PAGE_SIZE)
    for start in range(0, len(drawings), COLUMNS):
        for column, drawing in zip(st.columns(COLUMNS), drawings[start : start + COLUMNS], strict=False):
            with column:
                show_drawing_card(store, drawing, titles)


def accuracy_table(store: FeedbackStore, filters: DrawingFilter, titles: dict[str, str]) -> pd.DataFrame:
    rows = [
        {
            "model": titles.get(row.model, row.model),
            "accuracy": 100 * row.accuracy,
            "correct": row.correct,
            "drawings": row.drawings,
            "model versions": row.versions,
        }
        for row in store.model_accuracy(filters)
    ]
    return pd.DataFrame(rows, columns=["model", "accuracy", "correct", "drawings", "model versions"])


def show_accuracy(store: FeedbackStore, filters: DrawingFilter, titles: dict[str, str]) -> None:
    """Each model's accuracy on the saved drawings against your labels, and its confusion matrix."""
    table = accuracy_table(store, filters, titles)
    if table.empty:
        st.info("No model readings match these filters.", icon=":material/filter_alt_off:")
        return
    st.dataframe(
        table,
        hide_index=True,
        column_config={"accuracy": st.column_config.NumberColumn("accuracy", format="%.1f %%")},
    )
    st.caption("Model versions counts the different model files (by SHA-256) whose readings were saved.")
    models = store.models()
    for start in range(0, len(models), 2):
        for column, model in zip(st.columns(2), models[start : start + 2], strict=False):
            column.plotly_chart(
                charts.confusion_heatmap(store.confusion(model, filters), titles.get(model, model), shares=False),
                key=f"confusion-{model}",
                config=charts.COMPACT_CONFIG,
            )


def show_export(store: FeedbackStore, filters: DrawingFilter) -> None:
    """Download buttons for the filtered drawings as MNIST IDX files and as a CSV."""
    st.markdown(
        "The 28x28 inputs in MNIST's own IDX format (gzipped, white ink on black, as `digitlab.data.mnist` reads them) "
        "and a CSV with each drawing's details, every model's reading and its 784 pixels. "
        "`python -m digitlab feedback export --out DIR` writes the same files."
    )
    # Each file is built only when its button is clicked, not on every rerun of the page.
    for column, (name, export_format) in zip(st.columns(len(EXPORT_FILES)), EXPORT_FILES.items(), strict=True):
        column.download_button(
            name,
            functools.partial(_export_file, store, filters, name, export_format),
            file_name=name,
            mime="text/csv" if name.endswith(".csv") else "application/gzip",
            icon=":material/download:",
            key=f"download-{name}",
        )


def _export_file(store: FeedbackStore, filters: DrawingFilter, name: str, export_format: str) -> bytes:
    return store.export_files(filters, (export_format,))[name]
