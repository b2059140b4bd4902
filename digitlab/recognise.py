"""Recognise digits in image files or drawings with one or more trained models."""

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from digitlab.errors import DigitlabError
from digitlab.imaging.preprocess import preprocess
from digitlab.models.base import DigitClassifier
from digitlab.persistence import load_model

# A reading whose top probability is below this is reported as low confidence. On the real-world
# validation set (python -m digitlab realworld) the shipped CNN puts under 1 % of its correct
# readings below it, and about one in seven of its mistakes.
LOW_CONFIDENCE = 0.7
Prepared = TypeVar("Prepared")


@dataclass
class Outcome:
    """What became of one input: the 28x28 model input and each model's answer, or an error."""

    path: str
    model_input: np.ndarray | None = None
    predictions: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def is_low_confidence(confidence: float) -> bool:
    """Whether a reading with this top probability should be reported as unsure."""
    return confidence < LOW_CONFIDENCE


def predict_digit(models: dict[str, DigitClassifier], model_input: np.ndarray) -> list[dict[str, Any]]:
    """Each model's digit, confidence, low-confidence flag and ten probabilities for one 28x28 input."""
    predictions = []
    for name, model in models.items():
        probabilities = [round(float(value), 6) for value in model.predict_proba(model_input)[0]]
        digit = int(np.argmax(probabilities))
        predictions.append(
            {
                "model": name,
                "digit": digit,
                "confidence": probabilities[digit],
                "low_confidence": is_low_confidence(probabilities[digit]),
                "probabilities": probabilities,
            }
        )
    return predictions


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send what native code writes to the process's stderr to /dev/null for the duration.

    TensorFlow's C++ start-up log (oneDNN, CUDA drivers) ignores
    ``TF_CPP_MIN_LOG_LEVEL`` and would otherwise bury the command line's
    one-sentence messages. Python exceptions are unaffected.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_models(model_names: list[str], models_dir=None) -> dict[str, DigitClassifier]:
    """The named models, loaded with TensorFlow's start-up log kept off stderr."""
    with native_stderr_silenced():
        return {name: load_model(name, models_dir) for name in model_names}


def with_path(path: str | os.PathLike, error: DigitlabError) -> str:
    """The error's sentence, starting with the path unless it already names it."""
    return str(error) if str(path) in str(error) else f"{path}: {error}"


def prepared_files(
    paths: Iterable[str | os.PathLike],
    prepare: Callable[[str | os.PathLike], Prepared],
    model_names: list[str],
    models_dir=None,
) -> Iterator[tuple[str | os.PathLike, Prepared | None, dict[str, DigitClassifier] | None, str | None]]:
    """``(path, prepared, models, error)`` per path: what ``prepare(path)`` made, or its error's sentence.

    The models are loaded when the first file that prepares needs them, so a
    run over unreadable files alone never starts TensorFlow.
    """
    models = None
    for path in paths:
        try:
            prepared = prepare(path)
        except DigitlabError as error:
            yield path, None, None, with_path(path, error)
            continue
        if models is None:
            models = load_models(model_names, models_dir)
        yield path, prepared, models, None


def recognise_files(paths: Iterable[str | os.PathLike], model_names: list[str], models_dir=None) -> Iterator[Outcome]:
    """One :class:`Outcome` per path; an unreadable file yields an error and the rest go on."""
    for path, model_input, models, error in prepared_files(paths, preprocess, model_names, models_dir):
        outcome = Outcome(path=str(path), model_input=model_input, error=error)
        if error is None:
            outcome.predictions = predict_digit(models, model_input)
        yield outcome
