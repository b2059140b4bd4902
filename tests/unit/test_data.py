import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from digitlab import settings
from digitlab.data import mnist as data
from digitlab.errors import DataIntegrityError, DataUnavailableError
from tests.support import QuietHandler


class TruncatingHandler(QuietHandler):
    """Announces the whole file but closes the connection halfway through it."""

    def do_GET(self):  # noqa: N802 - the name http.server calls.
        body = Path(self.directory, self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def truncating_mirror(serve_folder, mnist_dir):
    return serve_folder(mnist_dir, TruncatingHandler)


def test_load_mnist_returns_uint8_arrays_of_mnist_shape(mnist_train, mnist_test):
    for (images, labels), count in ((mnist_train, 60_000), (mnist_test, 10_000)):
        assert images.shape == (count, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (count,) and labels.dtype == np.uint8
        assert set(np.unique(labels)) == set(range(10))
    # White ink on black: the border of MNIST digits is background.
    assert mnist_test[0][:, 0, :].mean() < 1


def test_known_first_labels(mnist_train, mnist_test):
    assert mnist_train[1][:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert mnist_test[1][:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]


def test_unknown_split_is_a_value_error(mnist_dir):
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("validation", mnist_dir)


def test_download_from_a_mirror_writes_verified_files(tmp_path, http_mirror, mnist_test):
    images, labels = data.load_mnist("test", tmp_path, mirrors=(http_mirror,))
    np.testing.assert_array_equal(images, mnist_test[0])
    np.testing.assert_array_equal(labels, mnist_test[1])
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_mirrors_are_tried_in_order_until_one_works(tmp_path, http_mirror):
    dead = http_mirror + "no-such-folder/"
    images, _ = data.load_mnist("test", tmp_path, mirrors=(dead, http_mirror))
    assert images.shape == (10_000, 28, 28)


def test_mirror_list_comes_from_the_environment(tmp_path, http_mirror, monkeypatch):
    monkeypatch.setenv(settings.MNIST_MIRRORS_VARIABLE, http_mirror)
    assert settings.mnist_mirrors() == (http_mirror,)
    images, _ = data.load_mnist("test", tmp_path)
    assert len(images) == 10_000


def test_truncated_download_is_detected_and_never_written(tmp_path, truncating_mirror):
    with pytest.raises(DataUnavailableError, match="download stopped|not a complete gzip|MD5"):
        data.load_mnist("test", tmp_path, mirrors=(truncating_mirror,))
    assert not any(tmp_path.iterdir())


def test_download_with_wrong_content_is_rejected(tmp_path, mnist_dir, serve_folder):
    served = tmp_path / "served"
    served.mkdir()
    for spec in (data.FILES["test", "images"], data.FILES["test", "labels"]):
        content = bytearray(gzip.decompress((mnist_dir / spec.gz_name).read_bytes()))
        content[-1] ^= 0xFF
        (served / spec.gz_name).write_bytes(gzip.compress(bytes(content)))
    target = tmp_path / "target"
    with pytest.raises(DataUnavailableError, match="MD5"):
        data.load_mnist("test", target, mirrors=(serve_folder(served),))
    assert not target.exists() or not any(target.iterdir())


def test_corrupted_local_file_is_refused(tmp_path, mnist_dir):
    for spec in (data.FILES["test", "images"], data.FILES["test", "labels"]):
        (tmp_path / spec.gz_name).write_bytes((mnist_dir / spec.gz_name).read_bytes())
    labels_path = tmp_path / data.FILES["test", "labels"].gz_name
    content = bytearray(gzip.decompress(labels_path.read_bytes()))
    content[100] = (content[100] + 1) % 10
    labels_path.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataIntegrityError, match="canonical"):
        data.load_mnist("test", tmp_path, download=False)


def test_half_written_local_file_is_refused(tmp_path, mnist_dir):
    spec = data.FILES["test", "images"]
    whole = (mnist_dir / spec.gz_name).read_bytes()
    (tmp_path / spec.gz_name).write_bytes(whole[: len(whole) // 3])
    with pytest.raises(DataIntegrityError, match="not a complete gzip"):
        data.load_mnist("test", tmp_path, download=False)


def test_offline_without_data_names_the_folder_and_the_variable(tmp_path):
    with pytest.raises(DataUnavailableError) as raised:
        data.load_mnist("train", tmp_path / "empty", mirrors=("http://127.0.0.1:9/",))
    message = str(raised.value)
    assert str(tmp_path / "empty") in message
    assert "DIGITLAB_DATA_DIR" in message


def test_download_mnist_fetches_the_missing_files_and_reports_bytes_and_files(tmp_path, http_mirror, mnist_dir):
    present = data.FILES["test", "labels"].gz_name
    (tmp_path / present).write_bytes((mnist_dir / present).read_bytes())
    reports = []

    assert data.download_mnist(tmp_path, mirrors=(http_mirror,), progress=reports.append) == tmp_path

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(spec.gz_name for spec in data.FILES.values())
    fetched = [spec.gz_name for spec in data.FILES.values() if spec.gz_name != present]
    assert list(dict.fromkeys(report.file_name for report in reports)) == fetched
    for number, name in enumerate(fetched, start=1):
        mine = [report for report in reports if report.file_name == name]
        assert {(report.file_number, report.file_count) for report in mine} == {(number, 3)}
        done = [report.bytes_done for report in mine]
        assert done == sorted(done) and done[0] == 0
        assert done[-1] == mine[-1].bytes_total == (mnist_dir / name).stat().st_size
    for split in data.SPLITS:
        data.load_mnist(split, tmp_path, download=False)


def test_download_mnist_leaves_a_complete_folder_alone(mnist_dir, offline):
    assert data.download_mnist(mnist_dir) == mnist_dir


def test_failed_download_says_what_to_do_and_keeps_each_attempt(tmp_path, offline):
    with pytest.raises(DataUnavailableError) as raised:
        data.download_mnist(tmp_path / "empty")
    error = raised.value
    for advice in (
        str(tmp_path / "empty"),
        "DIGITLAB_DATA_DIR",
        settings.MNIST_MIRRORS_VARIABLE,
        "train-images-idx3-ubyte.gz",
    ):
        assert advice in error.advice
    assert len(error.attempts) == 1 and error.attempts[0].startswith(offline)
    assert str(error).startswith(error.advice) and error.attempts[0] in str(error)


def test_keras_npz_is_read_and_verified(tmp_path, mnist_train, mnist_test):
    np.savez(
        tmp_path / "mnist.npz",
        x_train=mnist_train[0],
        y_train=mnist_train[1],
        x_test=mnist_test[0],
        y_test=mnist_test[1],
    )
    images, labels = data.load_mnist("test", tmp_path, download=False)
    np.testing.assert_array_equal(labels, mnist_test[1])
    tampered = mnist_test[0].copy()
    tampered[0, 0, 0] = 255
    np.savez(tmp_path / "mnist.npz", x_train=mnist_train[0], y_train=mnist_train[1], x_test=tampered, y_test=labels)
    with pytest.raises(DataIntegrityError, match="differ from the canonical"):
        data.load_mnist("test", tmp_path, download=False)


def test_default_folder_is_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.DATA_DIR_VARIABLE, str(tmp_path))
    assert settings.data_dir() == tmp_path
    monkeypatch.delenv(settings.DATA_DIR_VARIABLE)
    assert "digitlab" in str(settings.data_dir())


def test_data_checksum_changes_with_any_label():
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    first = data.data_checksum(images, np.array([1, 2, 3], dtype=np.uint8))
    second = data.data_checksum(images, np.array([1, 2, 4], dtype=np.uint8))
    assert first != second and len(first) == len(hashlib.sha256().hexdigest())


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x07", "magic number"), (b"\x00\x00\x08\x03\x00\x00", "cut short")],
)
def test_a_file_that_is_not_idx_is_refused_with_a_sentence(content, reason):
    with pytest.raises(DataIntegrityError, match=f"not in the IDX format.*{reason}"):
        data._read_idx(content, "labels")


def test_a_download_that_cannot_be_saved_says_where_and_what_to_do(tmp_path, http_mirror):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    with pytest.raises(DataUnavailableError, match=f"cannot be saved in {blocker / 'mnist'}.*DIGITLAB_DATA_DIR"):
        data.download_mnist(blocker / "mnist", mirrors=(http_mirror,))
