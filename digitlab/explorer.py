"""Find, filter, order, page and sample test images using the models' stored test-set probabilities.

Everything here works on the probabilities saved at evaluation time, so
exploring 10,000 test images never runs a model.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from digitlab.agreement import disagreement_mask
from digitlab.models import CLASSES

# How the other models must have fared on an image for it to be listed.
OTHER_MODEL_FILTERS = {
    "any": "any",
    "only": "only this model",
    "all": "all models wrong",
    "disagree": "models disagree",
}
ORDERS = {
    "confidence": "most confident mistakes first",
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


def order_indices(indices: np.ndarray, confidence: np.ndarray, order: str) -> np.ndarray:
    """Image indices by descending ``confidence`` (ties by index), or by index."""
    indices = np.asarray(indices)
    if order == "index":
        return np.sort(indices)
    if order != "confidence":
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}.")
    ranked = np.lexsort((indices, -np.asarray(confidence)[indices]))
    return indices[ranked]


def find_mistakes(labels: np.ndarray, probabilities: dict[str, np.ndarray], query: MistakeQuery) -> np.ndarray:
    """Indices of the test images that ``query.model`` gets wrong and that pass the query's filters."""
    if query.model not in probabilities:
        raise ValueError(f"No probabilities for model {query.model!r}.")
    labels = np.asarray(labels)
    predicted = predicted_digits(probabilities)
    wrong = {name: digits != labels for name, digits in predicted.items()}
    others = [name for name in wrong if name != query.model]
    mask = wrong[query.model].copy()
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
    return order_indices(np.flatnonzero(mask), confidence, query.order)


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
