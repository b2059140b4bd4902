"""The interface every model family implements, and what the families share.

Every family takes MNIST-format ``uint8`` images of shape ``(N, 28, 28)``:
``fit(images, labels)`` returns the model, ``predict_proba`` returns ``(N, 10)``
probabilities, ``predict`` the most probable digits. ``digitlab.models.registry``
lists the families that the command line, the benchmark and the dashboard loop over.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol, Self, runtime_checkable

import numpy as np
from sklearn.base import BaseEstimator

from digitlab.data.mnist import IMAGE_SHAPE

ProgressCallback = Callable[[int, int, dict], None]
# A reading whose top probability is below this is reported as low confidence. On the real-world
# validation set (python -m digitlab realworld) the shipped CNN puts under 1 % of its correct
# readings below it, and about one in seven of its mistakes.
LOW_CONFIDENCE = 0.7


def as_image_batch(images: np.ndarray) -> np.ndarray:
    """Validate MNIST-format input and add a batch axis to a single image."""
    array = np.asarray(images)
    if array.shape == IMAGE_SHAPE:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"Expected images of shape (N, 28, 28), got {array.shape}.")
    return array


def normalised_rows(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities as float64 rows that sum to exactly 1 (float32 outputs miss by a rounding error)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def validation_split(count: int, validation_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a random training part and a held-out validation part.

    The validation part is ``validation_size`` images, but never more than a
    tenth of the data, so small training runs keep most of their images.
    """
    validation_size = min(validation_size, count // 10)
    if validation_size < 1:
        raise ValueError(f"Need at least 10 training images to hold some out for validation, got {count}.")
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[validation_size:]), np.sort(order[:validation_size])


def is_low_confidence(confidence: float) -> bool:
    """Whether a reading with this top probability should be reported as unsure."""
    return confidence < LOW_CONFIDENCE


@dataclass(frozen=True)
class Reading:
    """One model's answer for one image: the digit, its probability and all ten probabilities."""

    model: str
    digit: int
    confidence: float
    probabilities: tuple[float, ...] = ()

    @property
    def low_confidence(self) -> bool:
        return is_low_confidence(self.confidence)

    @classmethod
    def from_probabilities(cls, model: str, probabilities: np.ndarray) -> "Reading":
        """The reading of one row of ``predict_proba``, rounded to six places as it is shown and stored."""
        rounded = tuple(round(float(value), 6) for value in probabilities)
        digit = int(np.argmax(rounded))
        return cls(model, digit, rounded[digit], rounded)

    def to_json(self) -> dict[str, Any]:
        """The reading as ``predict --json`` prints it."""
        return {
            "model": self.model,
            "digit": self.digit,
            "confidence": self.confidence,
            "low_confidence": self.low_confidence,
            "probabilities": list(self.probabilities),
        }


@runtime_checkable
class Predictor(Protocol):
    """What predict-only code (segmentation, heat maps, exported files) needs of a model."""

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of shape ``(N, 10)``, rows summing to 1."""


class TrainedMember(NamedTuple):
    """A trained model that a combining family (the ensemble) votes with, and the SHA-256 of its artefact."""

    model: "DigitClassifier"
    sha256: str


class DigitClassifier(BaseEstimator, ABC):
    """The interface every model family implements, on scikit-learn's estimator contract.

    Constructors take keyword-only hyperparameters and store them unchanged, so ``get_params``,
    ``set_params`` and ``sklearn.base.clone`` come from ``BaseEstimator``; what ``fit`` learns is kept in
    attributes whose names end in ``_``.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    artifact_name: ClassVar[str]
    # Families that combine other trained families name them here; training passes them to ``fit``.
    members: ClassVar[tuple[str, ...]] = ()
    # Families that train a network for a number of epochs, which the command line and the Train page can set.
    trains_in_epochs: ClassVar[bool] = False
    # What ``fit(..., reuse_from=path)`` keeps of a model of this family saved at ``path`` and what it fits again,
    # as a phrase for the user ("keeps its fitted SVM and calibrates it again"); None when it cannot reuse one.
    reuses: ClassVar[str | None] = None
    # The hyperparameters a saved model must share to be reused (None: all of them), and the settings a reusing
    # model starts from, which the caller's own settings override.
    reuse_requires: ClassVar[tuple[str, ...] | None] = None
    reuse_settings: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def fit(self, images: np.ndarray, labels: np.ndarray, *, progress: ProgressCallback | None = None) -> Self:
        """Fit on training images and labels; return ``self``."""

    @property
    def reading_sizes(self) -> tuple[float, ...]:
        """The sizes, relative to the digit as preprocessing makes it, at which this model reads inputs made from
        the user's images (``digitlab.imaging.sizes``); its answer is the mean over them. One size by default."""
        return (1.0,)

    @abstractmethod
    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of shape ``(N, 10)``, rows summing to 1."""

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.predict_proba(images).argmax(axis=1)

    @abstractmethod
    def complexity(self) -> dict[str, int]:
        """Size of the fitted model, e.g. its parameter or support-vector count."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the fitted model to ``path`` in a format that executes no code on load."""

    @classmethod
    @abstractmethod
    def load(
        cls,
        path: Path,
        *,
        params: Mapping[str, Any] | None = None,
        members: Mapping[str, TrainedMember] | None = None,
    ) -> Self:
        """Read a model written by :meth:`save`, built with ``params``, the hyperparameters it was trained with.

        A combining family is handed its trained ``members``; the others ignore them.
        """

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> Self:
        """An unfitted model with the recorded hyperparameters this family still takes (older manifests
        recorded a few more)."""
        known = cls._get_param_names()
        return cls(**{name: value for name, value in (params or {}).items() if name in known})

    def extra_examples_wanted(self, count: int) -> int:
        """How many extra examples in other writing styles ``fit`` takes beside ``count`` training images.

        Families that want some accept them as ``fit(..., extra_examples=(images, labels))`` and name the
        images they may be made from in :meth:`training_part`.
        """
        return 0

    def training_part(self, count: int) -> np.ndarray:
        """Positions of the ``count`` training images that ``fit`` learns from (not those it holds out)."""
        return np.arange(count)

    def training_notes(self) -> dict[str, Any]:
        """What the manifest should record about how the model was trained."""
        return {}

    def extra_artifacts(self) -> list[str]:
        """Files that :meth:`save` writes beside the artefact and that belong to it."""
        return []
