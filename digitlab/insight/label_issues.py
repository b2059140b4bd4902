"""Test images whose label is probably wrong, found from the models' out-of-sample probabilities.

This is confident learning (Northcutt, Jiang and Chuang, 2021) as the
``cleanlab`` library implements it; this module only checks the input and
gathers cleanlab's answers into one record for the dashboard. Images are ranked
by cleanlab's normalised-margin label quality, which orders them like the
margin shown here: the probability of the given label minus the largest
probability of any other digit, lowest (most suspect) first. An image is
*flagged* when the most probable digit is not its label (cleanlab's
``predicted_neq_given`` filter), and *confidently flagged* when, in addition,
it lies off the diagonal of the confident joint (the ``confident_learning``
filter): another digit's probability reaches that digit's threshold, the
average probability of the digit on the images labelled with it. Very confident models put those
thresholds close to 1, so that flag is rare. The probabilities must come from
models that never trained on these images; the stored test-set probabilities
are. ``scripts/compare_label_issue_rankers.py`` measures these rankings and
filters on label flips planted in held-out training images.
"""

from dataclasses import dataclass

import cleanlab.count
import cleanlab.filter
import cleanlab.rank
import numpy as np

from digitlab.data.mnist import CLASSES
from digitlab.models.registry import REGISTRY


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
    # cleanlab's estimates compare classes, so it refuses a set with a single label; say so in our own words.
    if len(np.unique(labels)) < 2:
        raise ValueError("Need images labelled with at least two different digits.")
    return probabilities, labels


def consensus(probabilities: dict[str, np.ndarray], names: list[str] | None = None) -> np.ndarray:
    """The mean of the named models' probabilities (all of them by default)."""
    names = list(probabilities) if names is None else names
    if not names:
        raise ValueError("Need at least one model's probabilities.")
    return np.mean([np.asarray(probabilities[name], dtype=np.float64) for name in names], axis=0)


def find_label_issues(probabilities: np.ndarray, labels: np.ndarray) -> LabelIssues:
    """Rank every image by how likely its label is wrong, flag those read as another digit, and the confident ones."""
    probabilities, labels = _checked(probabilities, labels)
    quality = cleanlab.rank.get_label_quality_scores(labels, probabilities, method="normalized_margin")
    return LabelIssues(
        # A stable sort breaks ties by index, so the order is reproducible.
        ranking=np.argsort(quality, kind="stable"),
        # cleanlab maps the margin from [-1, 1] onto [0, 1]; the dashboard shows the margin itself.
        margin=2 * quality - 1,
        suggested=probabilities.argmax(axis=1),
        flagged=cleanlab.filter.find_label_issues(labels, probabilities, filter_by="predicted_neq_given"),
        confidently_flagged=cleanlab.filter.find_label_issues(labels, probabilities, filter_by="confident_learning"),
        thresholds=cleanlab.count.get_confident_thresholds(labels, probabilities),
    )


def independent_models(names) -> list[str]:
    """The models that are not combinations of others (an ensemble would count its members twice); all if none."""
    names = list(names)
    independent = [name for name in names if name in REGISTRY and not REGISTRY[name].members]
    return independent or names
