"""The feedback store as the dashboard uses it: one shared connection, clear errors, and the Draw page's save form.

The store is cached for the life of the server process and shared by every session; it serialises
its threads itself. Its key includes the file's identity, so a database deleted or replaced while the
dashboard runs is opened afresh instead of being written through a connection to the old file.
"""

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from digitlab import settings
from digitlab.errors import DigitlabError
from digitlab.formatting import indefinite_article
from digitlab.insight.agreement import tally
from digitlab.lab.database import DatabaseError
from digitlab.lab.feedback import DIGITS, FeedbackStore, original_png
from digitlab.models.base import Reading
from ui import resources

SAVED_KEY = "saved-drawings"


def _file_identity(path: Path) -> tuple[int, int]:
    try:
        status = path.stat()
    except OSError:
        return (0, 0)
    return (status.st_dev, status.st_ino)


@st.cache_resource(show_spinner=False, max_entries=8)
def _store(path: str, identity: tuple[int, int]) -> FeedbackStore:
    return FeedbackStore(path)


def feedback_store() -> FeedbackStore:
    """The store at ``$DIGITLAB_DB`` (or the default path); raises DatabaseError when it cannot be used."""
    path = settings.database_path()
    return _store(str(path), _file_identity(path))


def report_database_error(error: DigitlabError) -> None:
    st.error(
        f"**Saved drawings cannot be used.** {error} The file was left as it is; set "
        f"`{settings.DATABASE_VARIABLE}` to another file to start afresh.",
        icon=":material/database:",
    )


def store_or_stop() -> FeedbackStore:
    """The store, or an error message and the end of the page's run."""
    try:
        return feedback_store()
    except DatabaseError as error:
        report_database_error(error)
        st.stop()


def saved_store_or_stop() -> FeedbackStore | None:
    """The store for a page that only reads it: None while its file does not exist, so viewing creates nothing."""
    if not settings.database_path().exists():
        return None
    return store_or_stop()


def model_versions() -> dict[str, str]:
    """Each model's SHA-256 from the manifest, recorded with its readings."""
    return {name: entry.sha256 or "unknown" for name, entry in resources.manifest().models.items()}


def show_save_form(
    source: Any, model_input: np.ndarray, predictions: list[Reading], key: str, *, is_digit: bool = True
) -> None:
    """Below a prediction: confirm the models' reading or pick the right digit, and save the drawing.

    For a drawing the lab took for something other than a digit, nothing is preselected: the user may still keep
    it by picking the digit it is.
    """
    fingerprint = hashlib.sha256(model_input.tobytes()).hexdigest()[:16]
    saved = st.session_state.setdefault(SAVED_KEY, {})
    if (key, fingerprint) in saved:
        drawing_id, label = saved[key, fingerprint]
        st.success(
            f"Saved as {indefinite_article(label)} **{label}** (drawing #{drawing_id}). "
            "Find it on the **My digits** page.",
            icon=":material/bookmark_added:",
        )
        return
    with st.form(f"{key}-save-form"):
        if is_digit:
            st.markdown("**Is this right?** Save this digit with the right label to measure and retrain the models.")
        else:
            st.markdown("**Is it a digit after all?** Pick the digit it is and save it, to measure and retrain.")
        # A new drawing gets a new widget, so the models' new reading becomes the preselected answer. A digit once
        # chosen stays chosen: clicking it again, to confirm the preselected reading, must not leave none. Pills
        # rather than a segmented control: ten digits need about 400 px, and separate pills wrap onto a second row on
        # a phone and stay whole, where the joined segments either ran off the screen or broke into two uneven bars.
        # Wrapping is asked for, not left to Streamlit, which keeps options on one scrolling row in some layouts.
        label = st.pills(
            "The right digit (the models' reading is preselected)" if is_digit else "The digit it is",
            options=DIGITS,
            default=tally(predictions).leading_digit if is_digit else None,
            required=True,
            wrap=True,
            key=f"{key}-label-{fingerprint}",
        )
        submitted = st.form_submit_button("Save with this digit", icon=":material/bookmark_add:")
    if not submitted:
        return
    if label is None:
        st.warning("Pick the right digit before saving.", icon=":material/touch_app:")
        return
    try:
        store = feedback_store()
        drawing_id = store.save(
            original=original_png(source),
            model_input=model_input,
            label=label,
            predictions=predictions,
            model_versions=model_versions(),
            source="drawn" if isinstance(source, np.ndarray) else "uploaded",
        )
    except DigitlabError as error:
        report_database_error(error)
        return
    saved[key, fingerprint] = (drawing_id, label)
    st.rerun()
