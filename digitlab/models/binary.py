"""Small networks that answer a yes-or-no question about a 28x28 model input, saved with a checked record.

The not-a-digit detector (:mod:`digitlab.models.detector`: digit or not?) and
the split network (:mod:`digitlab.models.splitter`: one digit or several?)
are both such networks. Each one's score is a logit; each is saved beside a
JSON record holding its SHA-256, and loaded only when the file still matches it.
"""

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from sklearn.base import BaseEstimator

from digitlab.atomic import save_atomically, write_json_atomically
from digitlab.checksums import sha256_file
from digitlab.errors import ModelUnavailableError
from digitlab.models.base import ProgressCallback, as_image_batch
from digitlab.models.neural import (
    batched_run,
    epoch_progress_callback,
    network_input,
    save_weights_only,
    saved_network,
    traced_forward,
)


class BinaryImageNetwork(BaseEstimator):
    """Scores MNIST-format images with a logit: above 0 leans to the positive kind, below to the negative one.

    Subclasses spell out their hyperparameters in ``__init__`` (``epochs``,
    ``batch_size``, ``learning_rate``, ``seed``), name themselves and the two
    kinds in :attr:`noun` and :attr:`kinds`, and build their network in :meth:`build_network`. ``fit``
    weighs the two kinds equally whatever their counts, and trains with Adam
    on a cosine schedule.
    """

    # What the network is and what its positive and negative examples are, for the refusal when one kind is missing.
    noun = "network"
    kinds: tuple[str, str] = ("positives", "negatives")
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int

    def build_network(self):
        raise NotImplementedError

    def fit(self, positives: np.ndarray, negatives: np.ndarray, *, progress: ProgressCallback | None = None):
        import keras

        if len(positives) == 0 or len(negatives) == 0:
            raise ValueError(f"The {self.noun} needs both {self.kinds[0]} and {self.kinds[1]} to learn from.")
        keras.utils.set_random_seed(self.seed)
        images = np.concatenate([as_image_batch(positives), as_image_batch(negatives)])
        targets = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))]).astype(np.float32)
        weights = np.where(targets == 1, len(images) / (2 * len(positives)), len(images) / (2 * len(negatives)))
        network = self.build_network()
        steps = math.ceil(len(images) / self.batch_size) * self.epochs
        network.compile(
            optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(self.learning_rate, steps)),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
        )
        callbacks = []
        if progress:
            callbacks.append(epoch_progress_callback(progress, self.epochs))
        network.fit(
            network_input(images),
            targets,
            sample_weight=weights.astype(np.float32),
            epochs=self.epochs,
            batch_size=self.batch_size,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
        self._set_network(network)
        return self

    def _set_network(self, network) -> None:
        self.network_ = network
        self._forward = traced_forward(network)

    def score(self, images: np.ndarray) -> np.ndarray:
        """The evidence (a logit) for the positive kind of each image in a batch of MNIST-format images, as float64."""
        return batched_run(self._forward, network_input(images))[:, 0].astype(np.float64)

    def save(self, path) -> None:
        save_weights_only(self.network_, path)

    @classmethod
    def load(cls, path, *, params: dict | None = None):
        network = cls(**(params or {}))
        network._set_network(saved_network(path))
        return network


class NetworkRecord(Protocol):
    """A saved network's record: a dataclass naming the network's file and holding its SHA-256."""

    artifact: str
    sha256: str

    def to_json(self) -> dict[str, Any]: ...


Record = TypeVar("Record", bound=NetworkRecord)


def write_with_record(network: BinaryImageNetwork, record: Record, folder: str | Path, record_name: str) -> Record:
    """Save ``network`` as the record's artifact and then the record with the file's SHA-256, both atomically."""
    folder = Path(folder)
    path = folder / record.artifact
    save_atomically(path, network.save)
    record = dataclasses.replace(record, sha256=sha256_file(path))
    write_json_atomically(folder / record_name, record.to_json())
    return record


def read_record(folder: str | Path, record_name: str, parse: Callable[[Any], Record], kind: str) -> Record:
    """The record of the ``kind`` of network saved in ``folder``; a clear error when it is missing or damaged."""
    path = Path(folder) / record_name
    if not path.exists():
        raise ModelUnavailableError(f"No {kind} in {folder} ({record_name} is missing).")
    try:
        return parse(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ModelUnavailableError(f"{path} is not a readable {kind} record ({error}).") from None


def checked_artifact(folder: str | Path, artifact: str, sha256: str, purpose: str) -> Path:
    """The path of ``artifact`` in ``folder`` once its SHA-256 matches the record's; else a clear error.

    ``purpose`` finishes the sentence "... is missing, so ...".
    """
    path = Path(folder) / artifact
    if not path.exists():
        raise ModelUnavailableError(f"{path} is missing, so {purpose}.")
    actual = sha256_file(path)
    if actual != sha256:
        raise ModelUnavailableError(
            f"{path} does not match its record (SHA-256 {actual[:12]}..., expected {sha256[:12]}...); "
            "it was modified or damaged, so it is not loaded."
        )
    return path


def load_checked(network_class: type[BinaryImageNetwork], path: Path, params: dict[str, Any]) -> BinaryImageNetwork:
    """The network saved at ``path`` (already checked); any loader failure becomes one clear error."""
    try:
        return network_class.load(path, params=params)
    except Exception as error:  # noqa: BLE001 - any loader failure means the same thing to the user.
        raise ModelUnavailableError(f"{path} could not be loaded ({type(error).__name__}: {error}).") from None
