"""Recognise digits in image files or drawings with one or more trained models."""

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitlab.errors import DigitlabError
from digitlab.models import DigitClassifier
from digitlab.persistence import load_model
from digitlab.preprocess import preprocess


@dataclass
class Outcome:
    """What became of one input: the 28x28 model input and each model's answer, or an error."""

    path: str
    model_input: np.ndarray | None = None
    predictions: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def predict_digit(models: dict[str, DigitClassifier], model_input: np.ndarray) -> list[dict[str, Any]]:
    """Each model's digit, confidence and ten probabilities for one 28x28 input."""
    predictions = []
    for name, model in models.items():
        probabilities = [round(float(value), 6) for value in model.predict_proba(model_input)[0]]
        digit = int(np.argmax(probabilities))
        predictions.append(
            {"model": name, "digit": digit, "confidence": probabilities[digit], "probabilities": probabilities}
        )
    return predictions


def recognise_files(paths: Iterable[str | os.PathLike], model_names: list[str], models_dir=None) -> Iterator[Outcome]:
    """One :class:`Outcome` per path; an unreadable file yields an error and the rest go on."""
    models = {name: load_model(name, models_dir) for name in model_names}
    for path in paths:
        outcome = Outcome(path=str(path))
        try:
            outcome.model_input = preprocess(path)
            outcome.predictions = predict_digit(models, outcome.model_input)
        except DigitlabError as error:
            outcome.error = str(error) if str(path) in str(error) else f"{path}: {error}"
        yield outcome
