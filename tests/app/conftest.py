"""The page tests' fixtures: the served models' manifest and titles, the test labels, a writable models copy.

The models come from ``digitlab.settings.models_dir()`` (``$DIGITLAB_MODELS_DIR`` or the shipped ``models/``)
and MNIST from the session's data folder. A models folder that cannot be read fails the tests that need it,
as it would fail the dashboard; an empty one (a fresh ``--out`` folder) skips them.
"""

import shutil

import pytest

from digitlab import settings
from digitlab.persistence import read_manifest
from ui.resources import model_titles


@pytest.fixture
def manifest():
    # A damaged manifest raises here and fails the test: the shipped models must always be readable.
    recorded = read_manifest()
    if not recorded.models:
        pytest.skip(f"No trained models in {settings.models_dir()}; run 'python -m digitlab train'.")
    return recorded


@pytest.fixture
def test_labels(mnist_test):
    return mnist_test[1]


@pytest.fixture
def titles(manifest):
    return model_titles(manifest)


@pytest.fixture
def models_copy(tmp_path, monkeypatch, manifest):
    """A writable copy of the models folder that the pages read instead of the real one."""
    copy = tmp_path / "models"
    shutil.copytree(settings.models_dir(), copy)
    monkeypatch.setenv(settings.MODELS_DIR_VARIABLE, str(copy))
    return copy
