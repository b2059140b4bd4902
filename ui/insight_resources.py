"""The insight pages' cached reads: the stored map and look-alikes, the label-issue ranking and the heat maps.

Like ``ui.resources``, keys include the files' modification times, so a
recomputed artefact or retrained model is picked up while the server runs.
"""

import time
from typing import Any

import numpy as np
import streamlit as st

from digitlab.errors import DigitlabError
from digitlab.insight.artefact import INSIGHT_NAME, Insight, load_insight
from digitlab.insight.attribution import explain
from digitlab.insight.label_issues import LabelIssues, consensus, find_label_issues, independent_models
from digitlab.persistence import MANIFEST_NAME
from ui import resources


@st.cache_data(show_spinner=False, max_entries=2)
def _insight(folder: str, insight_modified: float, manifest_modified: float) -> Insight:
    return load_insight(folder)


def insight_or_reason() -> tuple[Insight | None, str | None]:
    """The stored insight artefact, or None and the sentence that says why it cannot be used."""
    try:
        folder = resources.models_folder()
        insight = _insight(
            str(folder), resources.modified_time(folder / INSIGHT_NAME), resources.modified_time(folder / MANIFEST_NAME)
        )
        return insight, None
    except DigitlabError as error:
        return None, str(error)


@st.cache_data(show_spinner=False, max_entries=4)
def _label_issues(probabilities: dict[str, np.ndarray], labels: np.ndarray, names: tuple[str, ...]) -> LabelIssues:
    return find_label_issues(consensus(probabilities, list(names)), labels)


def label_issues(probabilities: dict[str, np.ndarray], labels: np.ndarray) -> tuple[LabelIssues, list[str]]:
    """The confident-learning ranking of the test labels, and the models whose probabilities it averages."""
    names = independent_models(probabilities)
    return _label_issues(probabilities, labels, tuple(names)), names


@st.cache_data(show_spinner=False, max_entries=64)
def _heat_maps(
    name: str, folder: str, sha256: str, image: np.ndarray, answer: int | None, _model: Any
) -> tuple[int, dict[str, np.ndarray], float]:
    # The model object is not hashed: its name, folder and artefact hash say which model it is.
    started = time.perf_counter()
    digit = int(_model.predict_proba(image).argmax()) if answer is None else answer
    maps = explain(_model, image, digit)
    return digit, maps, time.perf_counter() - started


def heat_maps(
    name: str, model: Any, image: np.ndarray, answer: int | None = None
) -> tuple[int, dict[str, np.ndarray], float]:
    """The digit explained, ``model``'s heat maps by method for it in ``image``, and the seconds they first took.

    The digit is ``answer`` where the page has read the image already (the Draw page's card, which a model may
    read at several sizes), else the one the model reads in ``image``. An occlusion map runs the model hundreds
    of times, so each is kept for this model file and image instead of being recomputed on every rerun of the page.
    """
    entry = resources.manifest().models.get(name)
    sha256 = "" if entry is None else entry.sha256
    return _heat_maps(name, str(resources.models_folder()), sha256, np.asarray(image), answer, model)
