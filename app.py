"""The digitlab dashboard. Start it with ``streamlit run app.py``.

This file only configures the page, draws the sidebar every page shares and
routes to the page scripts in ``pages/``.
"""

import os

# As in the command line, TensorFlow's info and warning logs stay out of the server log (only the few lines it
# prints before its logging starts still appear).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st  # noqa: E402

from ui.sidebar import keep_page_state, show_model_status  # noqa: E402

# An emoji needs nothing from the network, unlike a Material icon, which the browser fetches from a font server.
PAGE_ICON = "✍️"

page = st.navigation(
    [
        st.Page("pages/draw.py", title="Draw a digit", icon=":material/draw:", default=True),
        st.Page("pages/compare.py", title="Compare models", icon=":material/leaderboard:"),
        st.Page("pages/explore.py", title="Misclassification explorer", icon=":material/manage_search:"),
        st.Page("pages/dataset.py", title="Dataset", icon=":material/dataset:"),
        st.Page("pages/my_digits.py", title="My digits", icon=":material/bookmarks:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    ]
)
# Each page names its browser tab, so that several open tabs can be told apart.
st.set_page_config(page_title=f"{page.title} · digitlab", page_icon=PAGE_ICON, layout="wide")
keep_page_state(page.url_path)
show_model_status()
page.run()
