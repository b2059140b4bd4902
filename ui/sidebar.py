"""The sidebar every page shares: which models exist, their test accuracy and whether they are in memory."""

import streamlit as st

from digitlab.errors import DigitlabError
from ui import resources


def show_model_status() -> None:
    with st.sidebar:
        st.subheader("Models")
        folder = resources.models_folder()
        try:
            manifest = resources.manifest()
        except DigitlabError as error:
            st.error(f"The manifest cannot be read: {error}", icon=":material/error:")
            return
        if not manifest.models:
            st.warning(f"No trained models in `{folder}`. Run `python -m digitlab train`.", icon=":material/info:")
            return
        for name, entry in manifest.models.items():
            accuracy = entry.accuracy
            score = f"{accuracy:.2%}" if isinstance(accuracy, float) else "no score"
            state = resources.load_state(name, entry)
            if state == resources.LOADED:
                badge = ":green-badge[:material/check: loaded]"
            elif state is None:
                badge = ":gray-badge[loads on first use]"
            else:
                badge = ":red-badge[:material/error: failed to load]"
            problem = None if state in (None, resources.LOADED) else state
            st.markdown(f"**{entry.title_or(name)}**  \n{score} test accuracy {badge}", help=problem)
        st.caption(f"From `{folder}`")
