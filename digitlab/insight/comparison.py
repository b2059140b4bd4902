"""Tables for comparing trained models side by side, built from the figures recorded in the manifest.

Rows are plain dictionaries in long form (one value per row where a chart
groups by model), so any table or charting library can take them as they are.
"""

from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np

from digitlab.data.mnist import CLASSES
from digitlab.manifest import Manifest, Metrics, ModelEntry, Timing
from digitlab.models.registry import REGISTRY

Recorded = TypeVar("Recorded", Metrics, Timing)

IMAGES_PER_BATCH_FIGURE = 10_000
PER_CLASS_METRICS = ("precision", "recall", "f1")
# Above this ratio between the largest and smallest value, a linear axis hides the small bars.
LOG_SCALE_RATIO = 20.0
HISTORY_KEYS = {
    ("loss", "train"): "loss",
    ("loss", "validation"): "val_loss",
    ("accuracy", "train"): "accuracy",
    ("accuracy", "validation"): "val_accuracy",
}


def summary_row(name: str, entry: ModelEntry) -> dict[str, Any]:
    """One model's headline figures; raises ``KeyError``/``TypeError``/``ValueError`` when the entry lacks them.

    The per-digit figures and the confusion matrix are checked too, so a model
    that gets a row can be shown in every comparison.
    """
    metrics, timing = _complete(entry.metrics, "metrics"), _complete(entry.timing, "timing")
    confusion_matrix(entry)
    for metric in PER_CLASS_METRICS:
        values = per_class_values(entry, metric)
        if len(values) != CLASSES:
            raise ValueError(f"{metric} has {len(values)} per-digit values, not {CLASSES}")
    return {
        "model": name,
        "title": entry.title_or(name),
        "accuracy": float(metrics.accuracy),
        "errors": int(metrics.errors),
        "precision_macro": float(metrics.precision_macro),
        "recall_macro": float(metrics.recall_macro),
        "f1_macro": float(metrics.f1_macro),
        "training_seconds": _optional_float(entry.training_seconds),
        "ms_per_image": float(timing.single_image_ms),
        "seconds_per_10k": float(timing.batch_seconds) / int(timing.batch_images) * IMAGES_PER_BATCH_FIGURE,
        "size_mb": _optional_float(entry.size_bytes, scale=1e-6),
        "complexity": describe_complexity(entry.complexity or {}),
    }


def _complete(record: Recorded | None, part: str) -> Recorded:
    """``record`` when it holds every figure; a ``ValueError`` naming what the entry lacks otherwise."""
    if record is None:
        raise ValueError(f"the entry records no {part}")
    if missing := record.missing():
        raise ValueError(f"the entry's {part} lack {', '.join(missing)}")
    return record


def per_class_values(entry: ModelEntry, metric: str) -> list[float]:
    """The ten per-digit values of ``metric`` (precision, recall or f1); ``KeyError`` when they are not recorded."""
    per_class = None if entry.metrics is None else entry.metrics.per_class
    # The table is keyed by the metric's name, which is how the pages offer the choice.
    return (per_class or {})[metric]


def describe_complexity(complexity: dict[str, Any]) -> str:
    """A model's size in its own terms, e.g. "198,442 parameters" or "19,813 support vectors"."""
    return ", ".join(f"{int(count):,} {kind.replace('_', ' ')}" for kind, count in complexity.items()) or "unknown"


def summary_rows(manifest: Manifest) -> tuple[list[dict[str, Any]], list[str]]:
    """Every model's headline figures, and a sentence for each entry too incomplete to summarise."""
    rows, problems = [], []
    for name, entry in manifest.models.items():
        try:
            rows.append(summary_row(name, entry))
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
            problems.append(
                f"The manifest entry of {name} is incomplete ({type(error).__name__}: {error}); "
                f"retrain it with 'python -m digitlab train --model {name}' "
                "or run 'python -m digitlab evaluate --write'."
            )
    return rows, problems


def own_costs_note(names: Iterable[str], titles: dict[str, str]) -> str:
    """For each combining model among ``names``, a sentence saying its training time and size leave out its members'.

    The manifest times a combining family's own training (its extra networks, then its weights) and sizes its own
    files; the models it combines are trained and saved on their own, and have rows of their own.
    """
    sentences = []
    for name in names:
        members = REGISTRY[name].members if name in REGISTRY else ()
        if members:
            listed = ", ".join(titles.get(member, member) for member in members)
            sentences.append(
                f"For the {titles.get(name, name)}, training time and size on disk count only what it adds to "
                f"the models it combines ({listed}), which it also needs to run."
            )
    return " ".join(sentences)


def per_class_rows(manifest: Manifest, names: Iterable[str], metric: str) -> list[dict[str, Any]]:
    """One row per model and digit with that digit's precision, recall or F1."""
    if metric not in PER_CLASS_METRICS:
        raise ValueError(f"metric must be one of {', '.join(PER_CLASS_METRICS)}, not {metric!r}.")
    rows = []
    for name in names:
        entry = manifest.models[name]
        values = per_class_values(entry, metric)
        if len(values) != CLASSES:
            raise ValueError(f"{name} records {len(values)} per-class values of {metric}, not {CLASSES}.")
        rows.extend(
            {"model": name, "title": entry.title_or(name), "digit": digit, metric: float(value)}
            for digit, value in enumerate(values)
        )
    return rows


def confusion_matrix(entry: ModelEntry) -> np.ndarray:
    """The recorded 10x10 confusion matrix: rows are true digits, columns predicted digits."""
    recorded = None if entry.metrics is None else entry.metrics.confusion_matrix
    if recorded is None:
        raise ValueError("the entry records no confusion_matrix")
    matrix = np.asarray(recorded, dtype=np.int64)
    if matrix.shape != (CLASSES, CLASSES):
        raise ValueError(f"A confusion matrix must be {CLASSES}x{CLASSES}, not {matrix.shape}.")
    return matrix


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its total, so a cell is the share of that true digit; empty rows stay zero."""
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def largest_confusion(matrix: np.ndarray) -> tuple[int, int]:
    """The (true, predicted) cell off the diagonal with the most images: the model's most common mistake."""
    mistakes = np.asarray(matrix, dtype=np.float64).copy()
    np.fill_diagonal(mistakes, -1)
    true_digit, predicted_digit = np.unravel_index(int(mistakes.argmax()), mistakes.shape)
    return int(true_digit), int(predicted_digit)


def history_rows(history: dict[str, list[float]] | None) -> list[dict[str, Any]]:
    """A training history (a manifest entry's or a run's) in long form: epoch (from 1), quantity, split and value.

    ``history`` is laid out as Keras records it (``loss``, ``val_loss``...); without one there are no rows.
    """
    history = history or {}
    rows = []
    for (quantity, split), key in HISTORY_KEYS.items():
        rows.extend(
            {"epoch": epoch, "quantity": quantity, "split": split, "value": float(value)}
            for epoch, value in enumerate(history.get(key, []), start=1)
        )
    return rows


def needs_log_scale(values: Iterable[float | None], ratio: float = LOG_SCALE_RATIO) -> bool:
    """Whether the positive values spread over more than ``ratio`` times, so bars need a log axis."""
    positive = [value for value in values if value is not None and value > 0]
    return len(positive) > 1 and max(positive) / min(positive) > ratio


def _optional_float(value: Any, scale: float = 1.0) -> float | None:
    return None if value is None else float(value) * scale
