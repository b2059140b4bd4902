"""Shared fixtures: MNIST (fetched once like a user's first run when it is not here), small slices of it,
and a tiny trained models folder."""

import http.server
import os
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT, QuietHandler

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The copy CI keeps beside the clone (it has no network); a new user's machine has none.
LOCAL_MNIST = PROJECT_ROOT.parent / "shared" / "data" / "mnist"
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


@pytest.fixture(scope="session", autouse=True)
def mnist_dir() -> Path:
    """The folder holding the four canonical MNIST files, downloaded once through the project's loader if absent.

    It is the configured data folder (``$DIGITLAB_DATA_DIR``, the local copy beside the clone, else the user's
    cache folder), so tests use the data the way a user's first run gets it. Without data and without a
    network the session stops at once with the loader's sentence, instead of failing every test that reads it.
    """
    from digitlab import settings
    from digitlab.data.mnist import download_mnist
    from digitlab.errors import DataUnavailableError

    try:
        folder = download_mnist(settings.data_dir())
    except DataUnavailableError as error:
        pytest.exit(f"The tests need MNIST. {error}", returncode=pytest.ExitCode.USAGE_ERROR)
    # Pages and child processes the tests start read the same folder.
    os.environ[settings.DATA_DIR_VARIABLE] = str(folder)
    return folder


@pytest.fixture
def serve_folder() -> Callable[..., str]:
    """Serve folders over HTTP on 127.0.0.1, as a public mirror would: ``serve_folder(folder)`` gives the base URL."""
    servers = []

    def serve(folder: Path, handler: type[http.server.SimpleHTTPRequestHandler] = QuietHandler) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_mirror(serve_folder, mnist_dir) -> str:
    """The MNIST folder served over HTTP on 127.0.0.1."""
    return serve_folder(mnist_dir)


@pytest.fixture
def offline(monkeypatch) -> str:
    """Downloads fail at once, as they do without a network: the only mirror is a port nothing listens on."""
    from digitlab import settings

    mirror = "http://127.0.0.1:9/"
    monkeypatch.setenv(settings.MNIST_MIRRORS_VARIABLE, mirror)
    return mirror


@pytest.fixture(scope="session")
def mnist_train(mnist_dir):
    from digitlab.data.mnist import load_mnist

    return load_mnist("train", mnist_dir, download=False)


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    from digitlab.data.mnist import load_mnist

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
    from digitlab.models.registry import REGISTRY
    from digitlab.training import train_and_record

    folder = tmp_path_factory.mktemp("tiny-models")
    for name in REGISTRY:
        train_and_record(name, epochs=2, train_size=800, models_dir=folder, data_dir=mnist_dir)
    return folder
