"""Whether a region of ink holds several touching digits: a small network that helps decide where to cut a number.

Reading a whole number (:mod:`digitlab.imaging.segment`) cuts a wide piece of
ink in two when the evidence says it holds two touching digits rather than
one wide digit. The digit classifier's confidence in the whole and in the
pieces is part of that evidence, but a classifier reads two touching digits
as one digit with confidence surprisingly often (a 7 over a 4 read as 4 at
0.998). This network is trained on the question itself: does this model
input hold more than one digit? Its logit is one more feature of the cut's
evidence. It is trained by ``python scripts/train_split_network.py`` on the
regions of numbers composed from MNIST training digits outside the shipped
models' held-out split, and on the regions of rows of drawn letters,
symbols and doodles (which hold no digit, so they are not "several digits"
either).
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitlab.data.mnist import IMAGE_SHAPE
from digitlab.models.binary import (
    BinaryImageNetwork,
    checked_artifact,
    load_checked,
    read_record,
    write_with_record,
)

SPLITTER_ARTIFACT = "splitter.keras"
SPLITTER_RECORD = "splitter.json"


def build_split_network(*, seed: int = 0):
    """Two convolutions, a small dense layer and one logit: several digits (positive) or not (negative)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=(*IMAGE_SHAPE, 1), name="image"),
            layers.Rescaling(1 / 255, name="rescale"),
            layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed, name="random_shift"),
            layers.RandomRotation(0.03, fill_mode="constant", seed=seed + 1, name="random_rotation"),
            layers.Conv2D(16, 3, activation="relu", name="conv1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(32, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dropout(0.3, seed=seed + 2, name="dropout"),
            layers.Dense(64, activation="relu", name="dense"),
            layers.Dense(1, name="several_evidence"),
        ],
        name="split_network",
    )


class SplitNetwork(BinaryImageNetwork):
    """Scores region model inputs by how much they look like several digits (a logit; above 0 leans to several)."""

    noun = "split network"
    kinds = ("regions holding several digits", "regions holding one digit or none")

    # On the tenth of the training regions held out (scripts/train_split_network.py), AUROC 0.981 with a learning rate
    # of 1e-3 and 15 epochs, 0.994 with 3e-3, 0.996 with 5e-3, and 0.998 with 3e-3 and 25 epochs.
    def __init__(self, *, epochs: int = 25, batch_size: int = 128, learning_rate: float = 3e-3, seed: int = 0):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed

    def build_network(self):
        return build_split_network(seed=self.seed)


@dataclass(frozen=True)
class SplitterRecord:
    """What is known of a saved split network: its file, hyperparameters and what it was trained on."""

    artifact: str
    sha256: str
    hyperparameters: dict[str, Any]
    training: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> "SplitterRecord":
        """The record from its JSON form; ``ValueError`` naming the field when one is missing or of the wrong kind."""
        if not isinstance(data, dict):
            raise ValueError("the record is not a JSON object")
        checks = {
            "artifact": lambda value: isinstance(value, str) and value,
            "sha256": lambda value: isinstance(value, str) and len(value) == 64,
            "hyperparameters": lambda value: isinstance(value, dict),
            "training": lambda value: isinstance(value, dict),
        }
        for field, valid in checks.items():
            if not valid(data.get(field)):
                raise ValueError(f"its {field!r} is missing or not what a split network record holds")
        return cls(**{field: data[field] for field in checks})


def write_splitter(network: SplitNetwork, record: SplitterRecord, folder: str | Path) -> SplitterRecord:
    """Save the network and its record (with the network's SHA-256) atomically into ``folder``."""
    return write_with_record(network, record, folder, SPLITTER_RECORD)


def read_splitter_record(folder: str | Path) -> SplitterRecord:
    """The split network's record in ``folder``; a clear error when it is missing or damaged."""
    return read_record(folder, SPLITTER_RECORD, SplitterRecord.from_json, "split network")


def load_splitter(folder: str | Path) -> SplitNetwork:
    """The split network saved in ``folder``, checked against its record's SHA-256 before it is loaded."""
    record = read_splitter_record(folder)
    path = checked_artifact(folder, record.artifact, record.sha256, "touching digits cannot be judged by it")
    return load_checked(SplitNetwork, path, record.hyperparameters)
