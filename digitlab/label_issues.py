"""Test images whose label is probably wrong, found from the models' out-of-sample probabilities.

This is confident learning (Northcutt, Jiang and Chuang, 2021), the method
behind the ``cleanlab`` library, in the few lines it needs here. Images are
ranked by the normalised margin, the probability of the given label minus the
largest probability of any other digit, lowest (most suspect) first. An image
is *flagged* when the most probable digit is not its label (the paper's
C_confusion method), and *confidently flagged* when, in addition, that digit's
probability reaches the class threshold, the average probability of that class
on the images labelled with it (the off-diagonal of the confident joint; very
confident models make those thresholds close to 1, so this flag is rare). The
probabilities must come from models that never trained on these images; the
stored test-set probabilities are.
"""

from dataclasses import dataclass

import numpy as np

from digitlab.models import CLASSES


@dataclass(frozen=True)
class LabelIssues:
    """The ranking: image indices most suspect first, and per-image figures in index order."""

    ranking: np.ndarray
    margin: np.ndarray
    suggested: np.ndarray
    flagged: np.ndarray
    confidently_flagged: np.ndarray
    thresholds: np.ndarray


def _checked(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if probabilities.ndim != 2 or probabilities.shape[1] != CLASSES or len(probabilities) != len(labels):
        raise ValueError(f"Expected ({len(labels)}, {CLASSES}) probabilities, got shape {probabilities.shape}.")
    if len(labels) and (labels.min() < 0 or labels.max() >= CLASSES):
        raise ValueError("Labels must be digits 0-9.")
    return probabilities, labels


def consensus(probabilities: dict[str, np.ndarray], names: list[str] | None = None) -> np.ndarray:
    """The mean of the named models' probabilities (all of them by default)."""
    names = list(probabilities) if names is None else names
    if not names:
        raise ValueError("Need at least one model's probabilities.")
    return np.mean([np.asarray(probabilities[name], dtype=np.float64) for name in names], axis=0)


def class_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each class's mean probability over the images labelled with it (1 for a class with no image)."""
    probabilities, labels = _checked(probabilities, labels)
    thresholds = np.ones(CLASSES)
    for digit in range(CLASSES):
        members = labels == digit
        if members.any():
            thresholds[digit] = probabilities[members, digit].mean()
    return thresholds


def normalised_margin(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The given label's probability minus the largest other one, in [-1, 1]; low means suspect."""
    probabilities, labels = _checked(probabilities, labels)
    rows = np.arange(len(labels))
    given = probabilities[rows, labels]
    others = probabilities.copy()
    others[rows, labels] = -np.inf
    return given - others.max(axis=1)


def find_label_issues(probabilities: np.ndarray, labels: np.ndarray) -> LabelIssues:
    """Rank every image by how likely its label is wrong, flag those read as another digit, and the confident ones."""
    probabilities, labels = _checked(probabilities, labels)
    thresholds = class_thresholds(probabilities, labels)
    suggested = probabilities.argmax(axis=1)
    flagged = suggested != labels
    reaches_threshold = probabilities[np.arange(len(labels)), suggested] >= thresholds[suggested]
    margin = normalised_margin(probabilities, labels)
    ranking = np.lexsort((np.arange(len(labels)), margin))
    return LabelIssues(
        ranking=ranking,
        margin=margin,
        suggested=suggested,
        flagged=flagged,
        confidently_flagged=flagged & reaches_threshold,
        thresholds=thresholds,
    )


def independent_models(names) -> list[str]:
    """The models that are not combinations of others (an ensemble would count its members twice); all if none."""
    from digitlab.models import REGISTRY

    names = list(names)
    independent = [name for name in names if name in REGISTRY and not REGISTRY[name].members]
    return independent or names
