"""Shared fixtures: the local MNIST copy, small slices of it, and a tiny trained models folder."""

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_MNIST = PROJECT_ROOT.parent / "shared" / "data" / "mnist"
# Code under test that uses the default data folder (pages, child processes) finds the local copy.
if LOCAL_MNIST.exists():
    os.environ.setdefault("DIGITLAB_DATA_DIR", str(LOCAL_MNIST))


@pytest.fixture(scope="session", autouse=True)
def isolated_database(tmp_path_factory) -> Path:
    """Point the lab's database (and the promoted models beside it) at a temporary folder for the whole run.

    Pages and commands that open the database would otherwise read, and could change, the user's own
    saved drawings, training runs and promoted models. Tests that need their own file still set it.
    """
    path = tmp_path_factory.mktemp("user-data") / "digitlab.sqlite3"
    previous = os.environ.get("DIGITLAB_DB")
    os.environ["DIGITLAB_DB"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("DIGITLAB_DB", None)
    else:
        os.environ["DIGITLAB_DB"] = previous


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding the four canonical MNIST files."""
    configured = os.environ.get("DIGITLAB_DATA_DIR")
    folder = Path(configured) if configured else LOCAL_MNIST
    if not (folder / "t10k-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST is not in {folder}; set DIGITLAB_DATA_DIR to the folder with the four .gz files.")
    return folder


@pytest.fixture(scope="session")
def mnist_train(mnist_dir):
    from digitlab.data import load_mnist

    return load_mnist("train", mnist_dir, download=False)


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    from digitlab.data import load_mnist

    return load_mnist("test", mnist_dir, download=False)


@pytest.fixture(scope="session")
def small_train(mnist_train):
    """The first 600 training images: enough for every family to learn something in seconds."""
    images, labels = mnist_train
    return images[:600], labels[:600]


@pytest.fixture(scope="session")
def small_test(mnist_test):
    images, labels = mnist_test
    return images[:300], labels[:300]


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory, mnist_dir) -> Path:
    """A models folder with every registry family trained on 800 images for one epoch."""
    from digitlab.models import REGISTRY
    from digitlab.training import train_and_record

    folder = tmp_path_factory.mktemp("tiny-models")
    for name in REGISTRY:
        train_and_record(name, epochs=2, train_size=800, models_dir=folder, data_dir=mnist_dir)
    return folder


def digit_like_stroke(size: int = 64) -> np.ndarray:
    """A float image in [0, 1] with a thick vertical bar, like a drawn 1."""
    image = np.zeros((size, size), dtype=np.float32)
    image[size // 6 : size - size // 6, size // 2 - size // 16 : size // 2 + size // 16] = 1.0
    return image
