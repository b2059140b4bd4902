"""How pages report what went wrong: a clear message that says what to do, never a traceback.

The ``*_or_stop`` helpers return what a page cannot do without, or show the
message and end the page's run, so the sidebar and other pages keep working.
"""

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import streamlit as st

from digitlab import settings
from digitlab.errors import DataUnavailableError, DigitlabError, ImageError, NoDigitFoundError
from digitlab.manifest import Manifest
from ui import resources

TRAIN_COMMAND = "python -m digitlab train"
Read = TypeVar("Read")


def read_image_or_explain(read: Callable[[], Read]) -> Read | None:
    """What ``read()`` returns, or None after saying why the image holds no digit or cannot be used.

    The sentence is the one ``python -m digitlab predict`` prints for the same file (blank, random noise, ink
    scattered in many small marks...), so the page and the command line give the same reason.
    """
    try:
        return read()
    except NoDigitFoundError as error:
        st.info(str(error), icon=":material/gesture:")
    except ImageError as error:
        st.error(f"**This image cannot be used.** {error}", icon=":material/broken_image:")
    return None


def report_models_error(error: DigitlabError) -> None:
    st.error(f"**The trained models could not be read.** {error}", icon=":material/error:")


def report_no_models(folder: Path) -> None:
    st.warning(
        f"**No trained models in `{folder}` yet.** Train them with `{TRAIN_COMMAND}` (it downloads MNIST first), "
        f"or set `{settings.MODELS_DIR_VARIABLE}` to a folder that holds trained models.",
        icon=":material/model_training:",
    )


def report_data_error(error: DigitlabError, purpose: str) -> None:
    """Say why the MNIST images cannot be had and what to do; the download attempts go in an expander."""
    if isinstance(error, DataUnavailableError):
        st.error(
            f"**{purpose} needs the MNIST images, and they could not be downloaded.** {error.advice}",
            icon=":material/folder_off:",
        )
        if error.attempts:
            with st.expander("What was tried"):
                st.code("\n".join(error.attempts), language=None, wrap_lines=True)
    else:
        st.error(f"**The MNIST files could not be used.** {error}", icon=":material/error:")


def trained_manifest_or_stop() -> Manifest:
    """The manifest, if it is readable and lists at least one model."""
    try:
        manifest = resources.manifest()
    except DigitlabError as error:
        report_models_error(error)
        st.stop()
    if not manifest.models:
        report_no_models(resources.models_folder())
        st.stop()
    return manifest


def mnist_or_stop(split: str, purpose: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return resources.mnist(split)
    except DigitlabError as error:
        report_data_error(error, purpose)
        st.stop()


def test_probabilities_or_stop() -> dict[str, np.ndarray]:
    try:
        return resources.test_probabilities()
    except DigitlabError as error:
        report_models_error(error)
        st.stop()
