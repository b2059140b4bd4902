"""Everything the pages read from disk, cached for the life of the server process.

Cached readers raise :class:`digitlab.errors.DigitlabError` like the
functions they wrap; Streamlit does not cache a raised error, so a fixed file
is picked up on the next rerun. Keys include each file's modification time,
so retraining or re-evaluating while the dashboard runs is picked up too.
"""

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from digitlab import settings
from digitlab.checks.bench import BENCHMARK_NAME, read_benchmark
from digitlab.data.mnist import load_mnist
from digitlab.errors import DataUnavailableError, DigitlabError
from digitlab.lab.promotion import serving_models_dir
from digitlab.manifest import Manifest, ModelEntry
from digitlab.models.detector import RECORD_NAME, ScreenedDetector
from digitlab.models.splitter import SPLITTER_RECORD, SplitNetwork
from digitlab.persistence import MANIFEST_NAME, PROBABILITIES_NAME, load_model, load_test_probabilities, read_manifest
from digitlab.recognise import helper_folder, load_number_splitter, load_screen
from ui.downloads import fetch_mnist

LOADED = "loaded"


@st.cache_data(show_spinner=False, max_entries=2)
def _benchmark(path: str, modified: float) -> dict[str, Any]:
    return read_benchmark(path)


def benchmark() -> dict[str, Any]:
    """The models folder's ``benchmark.json``; empty when no benchmark has been run."""
    path = models_folder() / BENCHMARK_NAME
    return _benchmark(str(path), modified_time(path))


def models_folder() -> Path:
    """The models the pages use: ``$DIGITLAB_MODELS_DIR``, else the promoted ones, else the shipped ``models/``."""
    return serving_models_dir()


def modified_time(path: Path) -> float:
    """A file's modification time (0 when it is missing): part of a cache key, so that a changed file is read again."""
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_data(show_spinner=False, max_entries=4)
def _manifest(folder: str, modified: float) -> Manifest:
    return read_manifest(folder)


def model_titles(manifest: Manifest) -> dict[str, str]:
    """Each model's title as the pages show it, by name; a model without one goes by its name."""
    return {name: entry.title_or(name) for name, entry in manifest.models.items()}


def manifest() -> Manifest:
    """The models folder's manifest; an empty one when no models have been trained."""
    folder = models_folder()
    return _manifest(str(folder), modified_time(folder / MANIFEST_NAME))


@st.cache_data(show_spinner="Reading the stored test-set probabilities...", max_entries=2)
def _test_probabilities(folder: str, modified: float) -> dict[str, np.ndarray]:
    return load_test_probabilities(folder)


def test_probabilities() -> dict[str, np.ndarray]:
    """Each model's stored probabilities for the 10,000 MNIST test images."""
    folder = models_folder()
    return _test_probabilities(str(folder), modified_time(folder / PROBABILITIES_NAME))


@st.cache_data(show_spinner="Reading MNIST...", max_entries=2)
def _mnist(split: str, folder: str) -> tuple[np.ndarray, np.ndarray]:
    # Downloading happens outside the cache, where the page can show its progress.
    return load_mnist(split, folder, download=False)


def mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images and labels of ``split`` from the configured data folder, downloaded there on first use."""
    folder = settings.data_dir()
    try:
        return _mnist(split, str(folder))
    except DataUnavailableError:
        fetch_mnist(folder)
        return _mnist(split, str(folder))


@st.cache_resource(show_spinner=False)
def _load_outcomes() -> dict[tuple[str, str, str], str]:
    """What happened to each load attempt in this process: "loaded" or the error's message."""
    return {}


@st.cache_resource(show_spinner=False, max_entries=16)
def _model(name: str, folder: str, sha256: str):
    # The artefact's hash is part of the key, so a retrained model replaces the one in memory.
    return load_model(name, folder)


def _outcome_key(name: str, entry: ModelEntry) -> tuple[str, str, str]:
    return (name, str(models_folder()), entry.sha256)


def load_models() -> tuple[dict[str, Any], dict[str, str], bool]:
    """The manifest's models that load, an error message for each that does not, and whether this was a first try.

    A first try at any model means a sidebar drawn before this call is out of date.
    """
    models, failures, first_attempt = {}, {}, False
    outcomes = _load_outcomes()
    for name, entry in manifest().models.items():
        key = _outcome_key(name, entry)
        first_attempt = first_attempt or key not in outcomes
        try:
            models[name] = _model(*key)
        except DigitlabError as error:
            failures[name] = str(error)
            outcomes[key] = str(error)
        else:
            outcomes[key] = LOADED
    return models, failures, first_attempt


def load_state(name: str, entry: ModelEntry) -> str | None:
    """``"loaded"``, the error message of a failed load, or None when this process has not tried yet."""
    return _load_outcomes().get(_outcome_key(name, entry))


def helper_record_time(record_name: str, folder: Path) -> float:
    """When the record of the helper network used for ``folder`` was last written (0 if none): a cache key."""
    found = helper_folder(record_name, folder)
    return 0.0 if found is None else modified_time(found / record_name)


@st.cache_resource(show_spinner=False, max_entries=4)
def _screen(folder: str, modified: float) -> ScreenedDetector | None:
    # The record's modification time is part of the key, so a retrained detector replaces the one in memory.
    return load_screen(folder)


def screen() -> tuple[ScreenedDetector | None, str | None]:
    """The not-a-digit detector for the served models, or None and the reason it cannot be used."""
    try:
        folder = models_folder()
        detector = _screen(str(folder), helper_record_time(RECORD_NAME, folder))
    except DigitlabError as error:
        return None, str(error)
    if detector is None:
        return None, "No not-a-digit detector was found beside the models or among the shipped ones."
    return detector, None


@st.cache_resource(show_spinner=False, max_entries=4)
def _splitter(folder: str, modified: float) -> SplitNetwork | None:
    # As for the detector, the record's modification time is part of the key.
    return load_number_splitter(folder)


def number_splitter() -> SplitNetwork | None:
    """The split network that helps cut touching digits; None when there is none or it cannot be loaded.

    Numbers are still read without it, with the cut evidence fitted for that case.
    """
    try:
        folder = models_folder()
        return _splitter(str(folder), helper_record_time(SPLITTER_RECORD, folder))
    except DigitlabError:
        return None
