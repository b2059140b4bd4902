"""What every page shares: the routing through ``app.py``, the choices kept between pages and the models' sidebar."""

import runpy

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from digitlab.errors import DigitlabError
from ui import resources

# Widget keys whose values outlive a visit to another page: the explorer's filters, sort and inspected image, and the
# Compare page's chosen confusion cell.
KEPT_PREFIXES = ("explore_", "cell_")
# Session state that belongs to one visit of a page, such as an open dialog, is dropped once another page is shown.
VISIT_PREFIX = "visit_"
SHOWN_PAGE_KEY = "shown_page"


def route_through_app() -> None:
    """Run the page through ``app.py`` when Streamlit ran this page script on its own, then stop.

    Until some session has run ``app.py`` (and so ``st.navigation``), Streamlit takes a folder named ``pages/``
    beside the entrypoint for an old-style multipage app: a link straight to a page on a freshly started server
    runs that page alone, without the page settings, the sidebar or the navigation ``app.py`` sets up. Running
    the entrypoint here, in the same run, sends its navigation in place of the old-style one and routes to the
    page the link asked for, with any click that started the run; its ``st.navigation`` also clears Streamlit's
    process-wide flag, so every later run of every session goes through the router from the start.
    """
    context = get_script_run_ctx()
    if PagesManager.uses_pages_directory and context is not None:
        runpy.run_path(str(context.pages_manager.main_script_path), run_name="__main__")
        st.stop()


def keep_page_state(shown_page: str) -> None:
    """Keep the explorer's and the Compare page's choices while another page is shown; forget a visit's state.

    Streamlit forgets a widget's value at the end of a run in which the widget was not drawn; assigning the
    value to its key again before the page runs makes it session state of its own, which survives that run.
    """
    changed_page = st.session_state.get(SHOWN_PAGE_KEY) != shown_page
    st.session_state[SHOWN_PAGE_KEY] = shown_page
    for key in list(st.session_state):
        if not isinstance(key, str):
            continue
        if key.startswith(KEPT_PREFIXES):
            st.session_state[key] = st.session_state[key]
        elif changed_page and key.startswith(VISIT_PREFIX):
            del st.session_state[key]


def show_model_status() -> None:
    """Each model's test accuracy and whether it is loaded, in the sidebar."""
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
