"""Whether a model input shows a digit at all: a small network that tells digits from other drawings.

The digit classifiers answer one of ten digits for anything they are shown,
and do so with confidence for a letter A or a smiley. This network is trained
on the question they cannot answer: digit or not. Its score is a logit, the
evidence that the image is a digit; the lab refuses an image whose score
falls below a threshold chosen on validation digits (see
:mod:`digitlab.detection`).
"""

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.data.mnist import IMAGE_SHAPE
from digitlab.models.binary import (
    BinaryImageNetwork,
    checked_artifact,
    load_checked,
    read_record,
    write_with_record,
)

DETECTOR_ARTIFACT = "detector.keras"
RECORD_NAME = "detector.json"
# The score histogram's bins: digit evidence from -20 to 20 in steps of 1; scores beyond land in the end bins.
HISTOGRAM_EDGES = tuple(float(edge) for edge in range(-20, 21))


def build_detector_network(*, seed: int = 0):
    """Three convolutions, a small dense layer and one logit: digit (positive) or not (negative)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=(*IMAGE_SHAPE, 1), name="image"),
            layers.Rescaling(1 / 255, name="rescale"),
            layers.RandomRotation(0.03, fill_mode="constant", seed=seed, name="random_rotation"),
            layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed + 1, name="random_shift"),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(64, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(name="pool2"),
            layers.Conv2D(64, 3, activation="relu", name="conv3"),
            layers.Flatten(name="flatten"),
            layers.Dropout(0.3, seed=seed + 2, name="dropout"),
            layers.Dense(64, activation="relu", name="dense"),
            layers.Dense(1, name="digit_evidence"),
        ],
        name="digit_detector",
    )


class DigitDetector(BinaryImageNetwork):
    """Scores MNIST-format images by how much they look like a digit (a logit; above 0 leans to digit).

    ``fit`` takes digits and non-digits (:meth:`BinaryImageNetwork.fit`).
    """

    noun = "detector"
    kinds = ("digits", "non-digits")

    def __init__(self, *, epochs: int = 10, batch_size: int = 128, learning_rate: float = 2e-3, seed: int = 0):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed

    def build_network(self):
        return build_detector_network(seed=self.seed)


@dataclass(frozen=True)
class ScoreHistogram:
    """How validation digits and non-digits scored: counts per bin of :data:`HISTOGRAM_EDGES`."""

    edges: tuple[float, ...]
    digits: tuple[int, ...]
    non_digits: tuple[int, ...]

    @classmethod
    def of(cls, digit_scores: np.ndarray, non_digit_scores: np.ndarray) -> "ScoreHistogram":
        edges = np.array(HISTOGRAM_EDGES)

        def counts(scores: np.ndarray) -> tuple[int, ...]:
            clipped = np.clip(scores, edges[0], edges[-1] - 1e-9)
            return tuple(int(count) for count in np.histogram(clipped, bins=edges)[0])

        return cls(edges=HISTOGRAM_EDGES, digits=counts(digit_scores), non_digits=counts(non_digit_scores))


@dataclass(frozen=True)
class DetectorRecord:
    """What is known of a saved detector: its file, threshold and how it did on validation data."""

    artifact: str
    sha256: str
    threshold: float
    hyperparameters: dict[str, Any]
    digits_refused: dict[str, float]
    non_digits_refused: dict[str, float]
    auroc: float
    histogram: ScoreHistogram
    training: dict[str, Any]

    def with_training(self, training: dict[str, Any]) -> "DetectorRecord":
        return dataclasses.replace(self, training=training)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DetectorRecord":
        """The record from its JSON form; ``ValueError`` naming the field when one is missing or of the wrong kind."""
        if not isinstance(data, dict):
            raise ValueError("the record is not a JSON object")
        checks = {
            "artifact": lambda value: isinstance(value, str) and value,
            "sha256": lambda value: isinstance(value, str) and len(value) == 64,
            "threshold": lambda value: isinstance(value, int | float) and math.isfinite(value),
            "hyperparameters": lambda value: isinstance(value, dict),
            "digits_refused": _shares,
            "non_digits_refused": _shares,
            "auroc": lambda value: isinstance(value, int | float),
            "histogram": _histogram,
            "training": lambda value: isinstance(value, dict),
        }
        for field, valid in checks.items():
            if not valid(data.get(field)):
                raise ValueError(f"its {field!r} is missing or not what a detector record holds")
        histogram = ScoreHistogram(**{key: tuple(data["histogram"][key]) for key in ("edges", "digits", "non_digits")})
        return cls(**{field: data[field] for field in checks if field != "histogram"}, histogram=histogram)


def _shares(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(share, int | float) for share in value.values())


def _histogram(value: Any) -> bool:
    if not isinstance(value, dict) or not all(
        isinstance(value.get(key), list) for key in ("edges", "digits", "non_digits")
    ):
        return False
    return len(value["edges"]) == len(value["digits"]) + 1 == len(value["non_digits"]) + 1


@dataclass(frozen=True)
class Verdict:
    """Whether one model input shows a digit, with the score and threshold that decided it."""

    is_digit: bool
    score: float
    threshold: float

    def to_json(self) -> dict[str, Any]:
        return {"not_a_digit": not self.is_digit, "digit_score": round(self.score, 3), "threshold": self.threshold}


class ScreenedDetector:
    """A loaded detector with its threshold: gives a :class:`Verdict` for each model input."""

    def __init__(self, detector: DigitDetector, record: DetectorRecord):
        self.detector = detector
        self.record = record

    def verdicts(self, images: np.ndarray) -> list[Verdict]:
        threshold = self.record.threshold
        return [Verdict(bool(score >= threshold), float(score), threshold) for score in self.detector.score(images)]

    def verdict(self, image: np.ndarray) -> Verdict:
        return self.verdicts(image[None] if np.asarray(image).ndim == 2 else image)[0]


def write_detector(detector: DigitDetector, record: DetectorRecord, folder: str | Path) -> DetectorRecord:
    """Save the network and its record (with the network's SHA-256) atomically into ``folder``."""
    return write_with_record(detector, record, folder, RECORD_NAME)


def read_detector_record(folder: str | Path) -> DetectorRecord:
    """The detector record in ``folder``; a clear error when it is missing or damaged."""
    return read_record(folder, RECORD_NAME, DetectorRecord.from_json, "not-a-digit detector")


def load_detector(folder: str | Path) -> ScreenedDetector:
    """The detector saved in ``folder``, checked against its record's SHA-256 before it is loaded."""
    record = read_detector_record(folder)
    path = checked_artifact(folder, record.artifact, record.sha256, "images cannot be checked for being digits")
    return ScreenedDetector(load_checked(DigitDetector, path, record.hyperparameters), record)
