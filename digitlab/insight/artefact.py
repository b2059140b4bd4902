"""The precomputed insight artefact: a 2-D map of the test set and each test image's nearest training images.

Both come from one Keras model's penultimate layer (the CNN by default) and
are stored beside the models in ``insight.npz``, small enough to ship: the map
as float16 coordinates, the neighbours as indices into the training set. The
file records the SHA-256 of the model it came from, so after retraining it is
reported as out of date instead of silently showing another model's view.
"""

import io
import json
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitlab import settings
from digitlab.atomic import write_atomically
from digitlab.data.mnist import CLASSES, load_mnist
from digitlab.errors import ModelUnavailableError
from digitlab.insight.neighbours import nearest_by_class, penultimate_embedding
from digitlab.insight.projection import METHODS, two_d_map
from digitlab.manifest import Manifest
from digitlab.persistence import load_model, read_manifest, resolve_models_dir, writable_models_dir

INSIGHT_NAME = "insight.npz"
INSIGHT_COMMAND = "python -m digitlab insight"
INSIGHT_SCHEMA = 1
DEFAULT_SOURCE = "cnn"
DEFAULT_NEIGHBOURS = 6


class InsightUnavailableError(ModelUnavailableError):
    """The insight artefact is missing, damaged, or was computed from another model."""


@dataclass(frozen=True)
class Insight:
    """The stored map coordinates ``(N, 2)``, neighbour indices ``(N, 10, k)`` and how they were made."""

    coordinates: np.ndarray
    neighbours: np.ndarray
    about: dict[str, Any]


def compute_insight(
    model,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    *,
    per_class: int = DEFAULT_NEIGHBOURS,
    method: str = "tsne",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Map coordinates and per-class training neighbours of the test images, with the seconds each step took."""
    if not hasattr(model, "network_"):
        raise ValueError("The insight embedding needs a Keras model (one with a network_ attribute).")
    seconds = {}
    started = time.perf_counter()
    if progress:
        progress(f"embedding {len(train_images) + len(test_images):,} images through the penultimate layer")
    train_embedding = penultimate_embedding(model.network_, train_images)
    test_embedding = penultimate_embedding(model.network_, test_images)
    seconds["embedding"] = time.perf_counter() - started
    started = time.perf_counter()
    if progress:
        progress(f"finding {per_class} nearest training images of every class for each test image")
    neighbours = nearest_by_class(test_embedding, train_embedding, train_labels, per_class)
    seconds["neighbours"] = time.perf_counter() - started
    started = time.perf_counter()
    if progress:
        progress(f"projecting the test set to 2-D ({METHODS[method]})")
    coordinates = two_d_map(test_embedding, method=method, seed=seed)
    seconds["map"] = time.perf_counter() - started
    return coordinates, neighbours, seconds


def build_insight(
    models_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    *,
    source: str = DEFAULT_SOURCE,
    per_class: int = DEFAULT_NEIGHBOURS,
    method: str = "tsne",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Compute the artefact from the folder's ``source`` model and MNIST, write it, and return its description."""
    folder = resolve_models_dir(models_dir)
    entry = read_manifest(folder).models.get(source)
    if entry is None:
        raise ModelUnavailableError(f"No trained {source} model in {folder}; train it first.")
    model = load_model(source, folder)
    train_images, train_labels = load_mnist("train", data_dir)
    test_images, _ = load_mnist("test", data_dir)
    coordinates, neighbours, seconds = compute_insight(
        model, train_images, train_labels, test_images, per_class=per_class, method=method, seed=seed, progress=progress
    )
    about = {
        "schema": INSIGHT_SCHEMA,
        "source_model": source,
        "source_sha256": entry.sha256,
        "embedding": f"output of the layer before {source}'s last (probability) layer",
        "map_method": METHODS[method],
        "seed": seed,
        "neighbours": f"{per_class} nearest MNIST training images of each digit, Euclidean distance in the embedding",
        "test_images": len(test_images),
        "train_images": len(train_images),
        "seconds": {step: round(value, 1) for step, value in seconds.items()},
    }
    save_insight(folder, coordinates, neighbours, about)
    return about


def save_insight(folder: str | os.PathLike, coordinates: np.ndarray, neighbours: np.ndarray, about: dict) -> Path:
    """Write the artefact atomically: float16 coordinates, the smallest integer type that holds the indices."""
    neighbours = np.asarray(neighbours)
    index_type = np.uint16 if neighbours.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        coordinates=np.asarray(coordinates, dtype=np.float16),
        neighbours=neighbours.astype(index_type),
        about=np.array(json.dumps(about)),
    )
    path = writable_models_dir(folder) / INSIGHT_NAME
    write_atomically(path, buffer.getvalue())
    return path


def recompute_command(folder: Path) -> str:
    """The command that writes the artefact into ``folder``.

    Without ``--models-dir`` the command writes into the default models folder, so promoted models,
    which live elsewhere, need the folder named.
    """
    if Path(folder).resolve() == settings.models_dir().resolve():
        return INSIGHT_COMMAND
    return f"{INSIGHT_COMMAND} --models-dir {folder}"


def load_insight(models_dir: str | os.PathLike | None = None, manifest: Manifest | None = None) -> Insight:
    """The stored artefact, checked against the folder's manifest so an out-of-date one is refused."""
    folder = resolve_models_dir(models_dir)
    path = folder / INSIGHT_NAME
    command = recompute_command(folder)
    if not path.exists():
        raise InsightUnavailableError(f"{path} is missing; run '{command}' to compute it (a few minutes).")
    try:
        with np.load(path, allow_pickle=False) as archive:
            insight = Insight(
                coordinates=archive["coordinates"].astype(np.float32),
                neighbours=archive["neighbours"].astype(np.int64),
                about=json.loads(str(archive["about"])),
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise InsightUnavailableError(f"{path} is damaged ({error}); run '{command}' again.") from error
    count = len(insight.coordinates)
    if insight.coordinates.shape != (count, 2) or insight.neighbours.shape[:2] != (count, CLASSES):
        raise InsightUnavailableError(f"{path} does not have the expected shapes; run '{command}' again.")
    if not isinstance(insight.about, dict):
        raise InsightUnavailableError(f"{path} does not describe its source; run '{command}' again.")
    manifest = read_manifest(folder) if manifest is None else manifest
    source = insight.about.get("source_model")
    entry = manifest.models.get(source)
    current = None if entry is None else entry.sha256
    # A file that names no source model, or one the manifest lacks, cannot be shown to match it.
    if current is None or current != insight.about.get("source_sha256"):
        raise InsightUnavailableError(
            f"{path} was computed from another {source} model than the one in the manifest, so its map and "
            f"look-alikes would be out of date; run '{command}' to recompute it."
        )
    return insight
