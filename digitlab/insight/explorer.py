"""Find, filter, order, page and sample test images using the models' stored test-set probabilities.

Everything here works on the probabilities saved at evaluation time, so
exploring 10,000 test images never runs a model.
"""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from digitlab.data.mnist import CLASSES
from digitlab.insight.agreement import disagreement_mask

# How the other models must have fared on an image for it to be listed.
OTHER_MODEL_FILTERS = {
    "any": "any",
    "only": "only this model",
    "all": "all models wrong",
    "disagree": "models disagree",
}
ORDERS = {
    "confidence": "most confident mistakes first",
    "hardness": "hardest images first",
    "index": "test index",
}


@dataclass(frozen=True)
class MistakeQuery:
    """Which of a model's mistakes to list, and in what order."""

    model: str
    true_digit: int | None = None
    predicted_digit: int | None = None
    others: str = "any"
    order: str = "confidence"

    def __post_init__(self):
        if self.others not in OTHER_MODEL_FILTERS:
            raise ValueError(f"others must be one of {', '.join(OTHER_MODEL_FILTERS)}, not {self.others!r}.")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {self.order!r}.")
        for digit in (self.true_digit, self.predicted_digit):
            if digit is not None and not 0 <= digit < CLASSES:
                raise ValueError(f"A digit filter must be between 0 and 9, not {digit}.")


@dataclass(frozen=True)
class Reading:
    """One model's answer for one test image."""

    model: str
    digit: int
    confidence: float
    correct: bool
    top: list[tuple[int, float]]


@dataclass(frozen=True)
class Page:
    """One page of a list: its 1-based number, the page count and the slice of items it shows."""

    number: int
    count: int
    start: int
    stop: int


def usable_probabilities(
    probabilities: dict[str, np.ndarray], names: Iterable[str], image_count: int
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The named models' probabilities that fit the test set, in the given order, and a sentence per problem."""
    usable, problems = {}, []
    for name in names:
        values = probabilities.get(name)
        if values is None:
            problems.append(
                f"No stored test probabilities for {name}; run 'python -m digitlab evaluate --write' to create them."
            )
        elif values.shape != (image_count, CLASSES):
            problems.append(
                f"The stored test probabilities for {name} have shape {values.shape}, not ({image_count}, {CLASSES}); "
                "run 'python -m digitlab evaluate --write' to recreate them."
            )
        else:
            usable[name] = values
    return usable, problems


def predicted_digits(probabilities: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each model's most probable digit for every image."""
    return {name: np.asarray(values).argmax(axis=1) for name, values in probabilities.items()}


def mistake_indices(predicted: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, np.ndarray]:
    """For each model, the indices of the images whose predicted digit differs from the label."""
    labels = np.asarray(labels)
    return {name: np.flatnonzero(np.asarray(digits) != labels) for name, digits in predicted.items()}


def right_counts(predicted: dict[str, np.ndarray], labels: np.ndarray, indices: np.ndarray) -> dict[str, int]:
    """For each model, how many of the images at ``indices`` it reads as their label."""
    labels = np.asarray(labels)
    return {name: int((np.asarray(digits)[indices] == labels[indices]).sum()) for name, digits in predicted.items()}


def order_indices(indices: np.ndarray, score: np.ndarray, order: str) -> np.ndarray:
    """Image indices by descending ``score`` (confidence or hardness; ties by index), or by index."""
    indices = np.asarray(indices)
    if order == "index":
        return np.sort(indices)
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}.")
    ranked = np.lexsort((indices, -np.asarray(score)[indices]))
    return indices[ranked]


def hardness(probabilities: dict[str, np.ndarray]) -> np.ndarray:
    """One minus the margin between the two most probable digits, averaged over the models; in [0, 1].

    0 means every model is certain; near 1 means the models hesitate between two digits.
    """
    if not probabilities:
        raise ValueError("Need at least one model's probabilities.")
    margins = []
    for values in probabilities.values():
        top_two = np.sort(np.asarray(values, dtype=np.float64), axis=1)[:, -2:]
        margins.append(top_two[:, 1] - top_two[:, 0])
    return 1 - np.mean(margins, axis=0)


def find_mistakes(
    labels: np.ndarray, probabilities: dict[str, np.ndarray], query: MistakeQuery, within: np.ndarray | None = None
) -> np.ndarray:
    """Indices of the test images that ``query.model`` gets wrong and that pass the query's filters.

    ``within``, when given, limits the search to those image indices (e.g. a region chosen on the map).
    """
    if query.model not in probabilities:
        raise ValueError(f"No probabilities for model {query.model!r}.")
    labels = np.asarray(labels)
    predicted = predicted_digits(probabilities)
    wrong = {name: digits != labels for name, digits in predicted.items()}
    others = [name for name in wrong if name != query.model]
    mask = wrong[query.model].copy()
    if within is not None:
        region = np.zeros_like(mask)
        region[np.asarray(within, dtype=np.int64)] = True
        mask &= region
    if query.true_digit is not None:
        mask &= labels == query.true_digit
    if query.predicted_digit is not None:
        mask &= predicted[query.model] == query.predicted_digit
    if query.others == "only":
        for name in others:
            mask &= ~wrong[name]
    elif query.others == "all":
        for name in others:
            mask &= wrong[name]
    elif query.others == "disagree":
        mask &= disagreement_mask(predicted)
    confidence = np.asarray(probabilities[query.model]).max(axis=1)
    score = hardness(probabilities) if query.order == "hardness" else confidence
    return order_indices(np.flatnonzero(mask), score, query.order)


def cell_indices(labels: np.ndarray, predicted: np.ndarray, true_digit: int, predicted_digit: int) -> np.ndarray:
    """Indices of the images in one confusion-matrix cell: labelled ``true_digit``, read as ``predicted_digit``."""
    return np.flatnonzero((np.asarray(labels) == true_digit) & (np.asarray(predicted) == predicted_digit))


def paginate(total: int, number: int, per_page: int) -> Page:
    """Page ``number`` (clamped to the pages that exist) of ``total`` items, ``per_page`` at a time."""
    if per_page < 1:
        raise ValueError(f"per_page must be at least 1, not {per_page}.")
    if total < 0:
        raise ValueError(f"total must not be negative, not {total}.")
    count = max(1, -(-total // per_page))
    number = min(max(1, number), count)
    start = (number - 1) * per_page
    return Page(number=number, count=count, start=start, stop=min(total, start + per_page))


def top_predictions(probabilities: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    """The ``k`` most probable digits of one probability row, with their probabilities."""
    row = np.asarray(probabilities, dtype=np.float64)
    if row.shape != (CLASSES,):
        raise ValueError(f"Expected {CLASSES} probabilities, got shape {row.shape}.")
    ranked = np.lexsort((np.arange(CLASSES), -row))[:k]
    return [(int(digit), float(row[digit])) for digit in ranked]


def readings(probabilities: dict[str, np.ndarray], index: int, label: int, k: int = 3) -> list[Reading]:
    """Every model's answer for test image ``index`` whose true digit is ``label``."""
    result = []
    for name, values in probabilities.items():
        top = top_predictions(values[index], k)
        digit, confidence = top[0]
        result.append(Reading(model=name, digit=digit, confidence=confidence, correct=digit == int(label), top=top))
    return result


def sample_indices(count: int, size: int, seed: int) -> np.ndarray:
    """``size`` distinct image indices out of ``count``, the same for the same seed."""
    if count < 0 or size < 0:
        raise ValueError(f"count and size must not be negative, got {count} and {size}.")
    return np.random.default_rng(seed).choice(count, size=min(size, count), replace=False)


def view_csv(
    indices: np.ndarray,
    labels: np.ndarray,
    probabilities: dict[str, np.ndarray],
    flags: dict[str, np.ndarray] | None = None,
) -> str:
    """A CSV table of the listed test images: index, label, each model's prediction and confidence, flags.

    Always flagged: ``all_wrong`` (no model right) and ``disagree`` (the models give different digits),
    plus the image's hardness; ``flags`` adds boolean columns over all test images, e.g. suspected label errors.
    """
    labels = np.asarray(labels)
    predicted = predicted_digits(probabilities)
    wrong = np.array([digits != labels for digits in predicted.values()])
    columns = {
        "all_wrong": wrong.all(axis=0),
        "disagree": disagreement_mask(predicted),
        **(flags or {}),
    }
    scores = hardness(probabilities)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["index", "label"]
    for name in probabilities:
        header += [f"{name}_prediction", f"{name}_confidence"]
    writer.writerow([*header, "hardness", *columns])
    for index in np.asarray(indices, dtype=np.int64).tolist():
        row = [index, int(labels[index])]
        for name, values in probabilities.items():
            row += [int(predicted[name][index]), f"{float(values[index].max()):.4f}"]
        row.append(f"{scores[index]:.4f}")
        row += [int(bool(values[index])) for values in columns.values()]
        writer.writerow(row)
    return buffer.getvalue()
