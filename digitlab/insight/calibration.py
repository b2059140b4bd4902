"""How far a model's confidence can be trusted: reliability bins, expected calibration error and AUROC.

All three look only at the top label: the most probable digit and its
probability (the confidence). A model is well calibrated when, among the
images it answers with about 90 % confidence, about 90 % are right; the
expected calibration error (ECE) is the average gap between the two, over
equal-width bins of confidence weighted by how many images fall in each.
Calibration says nothing about whether the confidence tells right answers
from wrong ones, which the AUROC measures: the chance that a right answer
has a higher confidence than a wrong one (ties count half).
"""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# Fifteen equal-width bins over [0, 1], as in Guo et al. (2017), "On Calibration of Modern Neural Networks".
BIN_COUNT = 15


@dataclass(frozen=True)
class Reliability:
    """One model's reliability diagram: per confidence bin, the mean confidence, the accuracy and the image count.

    Bin ``k`` holds the confidences in ``(edges[k], edges[k + 1]]`` (the first
    bin includes 0). The mean confidence and accuracy of an empty bin are NaN.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray

    @property
    def expected_calibration_error(self) -> float:
        """The gaps between accuracy and mean confidence, weighted by each bin's share of the images."""
        filled = self.counts > 0
        shares = self.counts[filled] / self.counts.sum()
        return float(np.sum(shares * np.abs(self.accuracy[filled] - self.confidence[filled])))


def top_label(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's confidence (its highest probability) and whether that digit is its label."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(
            f"Need one row of probabilities per label: got probabilities of shape {probabilities.shape} "
            f"for {len(labels)} labels."
        )
    if not len(labels):
        raise ValueError("Cannot measure calibration on no images.")
    return probabilities.max(axis=1), probabilities.argmax(axis=1) == labels


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BIN_COUNT) -> Reliability:
    """The reliability diagram of ``bins`` equal-width bins of top-label confidence."""
    confidence, correct = top_label(probabilities, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Right-closed bins, so a confidence of exactly 1 falls in the last bin and one of exactly k/bins in bin k-1.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(index, weights=correct.astype(np.float64), minlength=bins) / counts
    return Reliability(edges=edges, confidence=mean_confidence, accuracy=accuracy, counts=counts)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = BIN_COUNT) -> float:
    """The top-label expected calibration error over ``bins`` equal-width bins, between 0 and 1."""
    return reliability(probabilities, labels, bins).expected_calibration_error


def confidence_auroc(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """How well the confidence ranks right answers above wrong ones: 1 perfectly, 0.5 no better than chance.

    NaN when every answer is right or every answer is wrong, since there is then nothing to tell apart.
    """
    # Imported here so that the pages which show these figures do not import scikit-learn when they start.
    from sklearn.metrics import roc_auc_score

    confidence, correct = top_label(probabilities, labels)
    if correct.all() or not correct.any():
        return math.nan
    return float(roc_auc_score(correct, confidence))


def calibration_rows(probabilities: dict[str, np.ndarray], labels: np.ndarray) -> list[dict[str, Any]]:
    """One row per model with its accuracy, mean confidence, expected calibration error and AUROC."""
    rows = []
    for name, values in probabilities.items():
        confidence, correct = top_label(values, labels)
        rows.append(
            {
                "model": name,
                "accuracy": float(correct.mean()),
                "mean_confidence": float(confidence.mean()),
                "ece": expected_calibration_error(values, labels),
                "auroc": confidence_auroc(values, labels),
            }
        )
    return rows


def reliability_rows(probabilities: dict[str, np.ndarray], labels: np.ndarray) -> list[dict[str, Any]]:
    """The reliability diagrams of several models in long form: one row per model and non-empty bin."""
    rows = []
    for name, values in probabilities.items():
        diagram = reliability(values, labels)
        rows.extend(
            {
                "model": name,
                "low": float(diagram.edges[index]),
                "high": float(diagram.edges[index + 1]),
                "confidence": float(diagram.confidence[index]),
                "accuracy": float(diagram.accuracy[index]),
                "count": int(diagram.counts[index]),
            }
            for index in np.flatnonzero(diagram.counts)
        )
    return rows
