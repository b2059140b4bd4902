"""The digitlab dashboard. Start it with ``streamlit run app.py``.

This file only configures the page, draws the sidebar every page shares and
routes to the page scripts in ``pages/``.
"""

import os

# As in the command line, TensorFlow's info and warning logs stay out of the server log (only the few lines it
# prints before its logging starts still appear).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st  # noqa: E402

from ui.sidebar import show_model_status  # noqa: E402

st.set_page_config(page_title="digitlab", page_icon=":material/draw:", layout="wide")

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
show_model_status()
page.run()
