"""MNIST on disk: find it, download it if needed, verify it, parse it.

The canonical files are the four gzipped IDX files. Their ``.gz`` wrappers
differ between mirrors, so integrity is checked on the decompressed bytes,
whose MD5s are the published ones. Keras' ``mnist.npz`` is read too when that
is what the folder holds; its arrays are checked against the same MD5s by
rebuilding the IDX bytes they came from.
"""

import gzip
import hashlib
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from digitlab import settings
from digitlab.atomic import write_atomically
from digitlab.data.idx import idx_bytes, read_idx
from digitlab.errors import DataIntegrityError, DataUnavailableError

SPLITS = ("train", "test")
# What every MNIST image and label is: a 28x28 picture of one of ten digits.
IMAGE_SIDE = 28
IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE)
CLASSES = 10
TRAIN_IMAGES = 60_000
TEST_IMAGES = 10_000
DOWNLOAD_TIMEOUT_SECONDS = 30
_CHUNK_BYTES = 1 << 16


@dataclass(frozen=True)
class IdxFile:
    name: str
    decompressed_md5: str
    decompressed_size: int

    @property
    def gz_name(self) -> str:
        return self.name + ".gz"


FILES = {
    ("train", "images"): IdxFile("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb", 47_040_016),
    ("train", "labels"): IdxFile("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624", 60_008),
    ("test", "images"): IdxFile("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea", 7_840_016),
    ("test", "labels"): IdxFile("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637", 10_008),
}
KERAS_NPZ_NAME = "mnist.npz"
_NPZ_KEYS = {
    ("train", "images"): "x_train",
    ("train", "labels"): "y_train",
    ("test", "images"): "x_test",
    ("test", "labels"): "y_test",
}
_IDX_DIMENSIONS = {"labels": 1, "images": 3}


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands: which file of how many, and its bytes so far (total None when not announced)."""

    file_name: str
    file_number: int
    file_count: int
    bytes_done: int
    bytes_total: int | None


ProgressCallback = Callable[[DownloadProgress], None]
ByteReport = Callable[[int, int | None], None]


def load_mnist(
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirrors: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)`` of one MNIST split.

    ``images`` is ``uint8`` of shape ``(N, 28, 28)``, white ink on black;
    ``labels`` is ``uint8`` of shape ``(N,)``. Files are read from
    ``data_dir`` (default: :func:`digitlab.settings.data_dir`) and downloaded
    into it when missing, unless ``download`` is false.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    folder = _folder(data_dir)
    if _holds_npz_only(folder, split):
        return _load_from_npz(folder / KERAS_NPZ_NAME, split)
    images = _read_idx(_fetch(FILES[split, "images"], folder, download, mirrors), "images")
    labels = _read_idx(_fetch(FILES[split, "labels"], folder, download, mirrors), "labels")
    if len(images) != len(labels):
        raise DataIntegrityError(f"The {split} split has {len(images)} images but {len(labels)} labels.")
    return images, labels


def download_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    mirrors: tuple[str, ...] | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download whichever of the four MNIST files ``data_dir`` lacks, verified and written atomically.

    Returns the folder. Files already there are left for :func:`load_mnist` to verify when it reads
    them; a folder holding Keras' ``mnist.npz`` instead needs nothing. ``progress`` is called as bytes
    arrive (default: a progress bar on stderr). Raises :class:`DataUnavailableError` with what to do
    when a file cannot be had from any mirror.
    """
    folder = _folder(data_dir)
    if all(_holds_npz_only(folder, split) for split in SPLITS):
        return folder
    missing = [spec for spec in FILES.values() if not (folder / spec.gz_name).exists()]
    for number, spec in enumerate(missing, start=1):
        _download(spec, folder, mirrors, progress, (number, len(missing)))
    return folder


def data_checksum(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 over a dataset's pixels and labels, recorded beside trained models."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def _folder(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir) if data_dir is not None else settings.data_dir()


def _holds_npz_only(folder: Path, split: str) -> bool:
    """Whether ``split`` is read from Keras' ``mnist.npz``: the folder has it and none of the split's IDX files."""
    has_idx = any((folder / FILES[split, kind].gz_name).exists() for kind in ("images", "labels"))
    return folder.is_dir() and not has_idx and (folder / KERAS_NPZ_NAME).exists()


def _fetch(spec: IdxFile, folder: Path, download: bool, mirrors: tuple[str, ...] | None) -> bytes:
    """The verified decompressed bytes of one file, downloading it if it is absent."""
    path = folder / spec.gz_name
    if path.exists():
        return _verified_content(path.read_bytes(), spec, source=str(path))
    if not download:
        raise DataUnavailableError(_missing_message(folder))
    return _download(spec, folder, mirrors)


def _verified_content(gz_bytes: bytes, spec: IdxFile, source: str) -> bytes:
    try:
        content = gzip.decompress(gz_bytes)
    except (OSError, EOFError) as error:
        raise DataIntegrityError(
            f"{source} is not a complete gzip file ({error}); delete it to download it again."
        ) from error
    digest = hashlib.md5(content, usedforsecurity=False).hexdigest()
    if len(content) != spec.decompressed_size or digest != spec.decompressed_md5:
        raise DataIntegrityError(
            f"{source} does not hold the canonical {spec.name} "
            f"(MD5 of its decompressed bytes is {digest}, expected {spec.decompressed_md5}); "
            "delete it to download it again."
        )
    return content


@contextmanager
def _byte_reporter(progress: ProgressCallback | None, name: str, number: int, count: int) -> Iterator[ByteReport]:
    """A ``(bytes_done, bytes_total)`` callback for one download: ``progress``'s, or a progress bar on stderr."""
    if progress is not None:
        yield lambda done, total: progress(DownloadProgress(name, number, count, done, total))
        return
    with tqdm(unit="B", unit_scale=True, desc=f"Downloading {name}", file=sys.stderr) as bar:

        def show(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield show


def _download(
    spec: IdxFile,
    folder: Path,
    mirrors: tuple[str, ...] | None,
    progress: ProgressCallback | None = None,
    position: tuple[int, int] = (1, 1),
) -> bytes:
    """Try each mirror in turn (default: the configured ones); the first verified copy is written atomically.

    ``position`` is this file's number and the count of files being downloaded, for ``progress``.
    """
    failures = []
    for mirror in mirrors if mirrors is not None else settings.mnist_mirrors():
        url = mirror.rstrip("/") + "/" + spec.gz_name
        try:
            with _byte_reporter(progress, spec.gz_name, *position) as report:
                gz_bytes = _http_get(url, report)
            content = _verified_content(gz_bytes, spec, source=url)
        except (OSError, urllib.error.URLError, DataIntegrityError) as error:
            failures.append(f"{url}: {error}")
            continue
        try:
            write_atomically(folder / spec.gz_name, gz_bytes)
        except OSError as error:
            raise DataUnavailableError(
                f"MNIST was downloaded but cannot be saved in {folder} ({error}); "
                f"set {settings.DATA_DIR_VARIABLE} to a folder you can write to."
            ) from error
        return content
    advice = (
        f"{_missing_message(folder)} To download from elsewhere, set {settings.MNIST_MIRRORS_VARIABLE} to the "
        "base URLs of mirrors you can reach."
    )
    raise DataUnavailableError(advice, attempts=tuple(failures) or ("(no mirrors configured)",))


def _http_get(url: str, report: ByteReport) -> bytes:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
        expected = response.headers.get("Content-Length")
        total = int(expected) if expected and expected.isdigit() else None
        chunks, done = [], 0
        report(done, total)
        while chunk := response.read(_CHUNK_BYTES):
            chunks.append(chunk)
            done += len(chunk)
            report(done, total)
    body = b"".join(chunks)
    if total is not None and len(body) != total:
        raise OSError(f"download stopped after {len(body)} of {total} bytes")
    return body


def _read_idx(content: bytes, kind: str) -> np.ndarray:
    try:
        array = read_idx(content)
    except ValueError as error:
        raise DataIntegrityError(f"An MNIST {kind} file is not in the IDX format ({error}).") from error
    if array.ndim != _IDX_DIMENSIONS[kind]:
        raise DataIntegrityError(f"An MNIST {kind} file has {array.ndim} dimensions, not {_IDX_DIMENSIONS[kind]}.")
    return array


def _load_from_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {kind: archive[_NPZ_KEYS[split, kind]] for kind in ("images", "labels")}
    except (OSError, ValueError, KeyError) as error:
        raise DataIntegrityError(f"{path} is not a readable Keras mnist.npz ({error}).") from error
    for kind, array in arrays.items():
        _verified_idx_array(array, FILES[split, kind], kind, source=str(path))
    return arrays["images"].astype(np.uint8), arrays["labels"].astype(np.uint8)


def _verified_idx_array(array: np.ndarray, spec: IdxFile, kind: str, source: str) -> None:
    content = idx_bytes(np.ascontiguousarray(array, dtype=np.uint8))
    digest = hashlib.md5(content, usedforsecurity=False).hexdigest()
    if digest != spec.decompressed_md5:
        raise DataIntegrityError(f"The {kind} in {source} differ from the canonical {spec.name} (MD5 {digest}).")


def _missing_message(folder: Path) -> str:
    names = ", ".join(spec.gz_name for spec in FILES.values())
    return (
        f"MNIST was not found in {folder} and could not be downloaded. "
        f"Put the four files ({names}) or Keras' {KERAS_NPZ_NAME} there, "
        f"or set {settings.DATA_DIR_VARIABLE} to the folder that holds them."
    )
