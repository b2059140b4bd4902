"""Whether several models read the same digit: for one drawing, or image by image over a test set."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digitlab.models.base import Reading


@dataclass(frozen=True)
class Agreement:
    """How the models' predictions for one image split over digits.

    ``votes`` maps each predicted digit to the models that read it, the digit
    with the most votes first (ties broken by the smaller digit).
    """

    votes: dict[int, list[str]]

    @property
    def unanimous(self) -> bool:
        return len(self.votes) == 1

    @property
    def leading_digit(self) -> int:
        return next(iter(self.votes))


def tally(predictions: Sequence[Reading]) -> Agreement:
    """Group the models' readings (as ``predict_digit`` returns them) by digit."""
    if not predictions:
        raise ValueError("Cannot tally an empty list of predictions.")
    votes: dict[int, list[str]] = {}
    for prediction in predictions:
        votes.setdefault(prediction.digit, []).append(prediction.model)
    ordered = sorted(votes.items(), key=lambda item: (-len(item[1]), item[0]))
    return Agreement(votes=dict(ordered))


def disagreement_mask(predicted: dict[str, np.ndarray]) -> np.ndarray:
    """For each image, whether the models' predicted digits are not all the same."""
    if not predicted:
        raise ValueError("Need the predictions of at least one model.")
    stacked = np.stack([np.asarray(digits) for digits in predicted.values()])
    return (stacked != stacked[0]).any(axis=0)
