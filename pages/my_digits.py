"""The drawings saved from the Draw page: browse, relabel or delete them, see each model's accuracy, export them."""

import streamlit as st

from digitlab import settings
from digitlab.errors import DigitlabError
from ui.feedback import report_database_error, saved_store_or_stop
from ui.saved_drawings import (
    counted,
    filter_controls,
    model_titles,
    show_accuracy,
    show_drawings,
    show_export,
    show_notice,
)
from ui.sidebar import route_through_app

route_through_app()
st.title("My digits")
st.caption(
    "Every digit you saved on the Draw page, with the label you gave it and what each model read. "
    "They measure the models on your handwriting and can be exported as a dataset."
)

store = saved_store_or_stop()
titles = model_titles()
show_notice()
try:
    total = store.count() if store is not None else 0
    if not total:
        st.info(
            "No saved drawings yet. Draw a digit on the **Draw a digit** page, pick the right digit under the "
            f"models' answers and save it; it appears here. (Database: `{settings.database_path()}`)",
            icon=":material/draw:",
        )
        st.stop()
    st.markdown(f"**{counted(total, 'saved drawing')}** in `{store.path}`.")
    filters = filter_controls(store.models(), titles)
    drawings_tab, accuracy_tab, export_tab = st.tabs(
        [":material/grid_view: Drawings", ":material/leaderboard: Accuracy", ":material/download: Export"]
    )
    with drawings_tab:
        show_drawings(store, filters, titles)
    with accuracy_tab:
        show_accuracy(store, filters, titles)
    with export_tab:
        show_export(store, filters)
except DigitlabError as error:
    report_database_error(error)
