"""Recognise digits, or whole numbers, in image files or drawings with one or more trained models."""

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from digitlab import settings
from digitlab.errors import DigitlabError
from digitlab.imaging.preprocess import preprocess
from digitlab.imaging.segment import (
    NumberReading,
    Segment,
    digit_like,
    displayed_gray,
    number_ink,
    read_segments,
    segment_ink,
)
from digitlab.imaging.sizes import reading_probabilities
from digitlab.models.base import DigitClassifier, Reading
from digitlab.models.detector import RECORD_NAME, ScreenedDetector, Verdict, load_detector
from digitlab.models.splitter import SPLITTER_RECORD, SplitNetwork, load_splitter
from digitlab.persistence import load_model, read_manifest, resolve_models_dir

Prepared = TypeVar("Prepared")
Helper = TypeVar("Helper")
Model = TypeVar("Model")


@dataclass
class Outcome:
    """What became of one input: the 28x28 model input and each model's answer, or an error."""

    path: str
    model_input: np.ndarray | None = None
    predictions: list[Reading] = field(default_factory=list)
    verdict: Verdict | None = None
    error: str | None = None

    def reading_json(self, reading: Reading) -> dict:
        """One model's reading as ``predict --json`` prints it: with ``"digit": null`` when it is not a digit."""
        answer = {"path": self.path, **reading.to_json()}
        if self.verdict is None:
            return answer
        if not self.verdict.is_digit:
            answer = {**answer, "digit": None, "closest": reading.digit}
        return {**answer, **self.verdict.to_json()}


def predict_digit(models: dict[str, DigitClassifier], model_input: np.ndarray) -> list[Reading]:
    """Each model's reading of one 28x28 input made from the user's image, at its reading sizes."""
    return [
        Reading.from_probabilities(name, reading_probabilities(model, model_input)[0]) for name, model in models.items()
    ]


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


def best_first(models: Mapping[str, Model], accuracies: Mapping[str, float | None]) -> dict[str, Model]:
    """The models, the one with the best recorded test accuracy first; a model without one comes last.

    Reading a number, the first model decides where touching digits are cut
    (:func:`digitlab.imaging.segment.read_number`), and every model reads the
    same pieces. Cut by the SVM, the first of the registry, the CNN read 377 and the
    ensemble 376 of 400 composed numbers of development seeds 5 and 6 exactly; cut by the
    ensemble, the most accurate, 381 and 380.
    """

    def accuracy(name: str) -> float:
        recorded = accuracies.get(name)
        return -1.0 if recorded is None else float(recorded)

    return {name: models[name] for name in sorted(models, key=accuracy, reverse=True)}


def recorded_accuracies(models_dir=None) -> dict[str, float | None]:
    """Each model's recorded test accuracy in the models folder's manifest."""
    return {name: entry.accuracy for name, entry in read_manifest(resolve_models_dir(models_dir)).models.items()}


def helper_folder(record_name: str, models_dir=None) -> Path | None:
    """The folder whose ``record_name`` is used: the models folder's own, else the shipped one; None if neither has it.

    The helper networks (the not-a-digit detector, the split network) do not
    depend on which classifiers are served, so promoted models and training
    runs use the shipped ones.
    """
    for folder in dict.fromkeys([resolve_models_dir(models_dir), settings.shipped_models_dir()]):
        if (folder / record_name).exists():
            return folder
    return None


def load_screen(models_dir=None) -> ScreenedDetector | None:
    """The not-a-digit detector saved beside the models, else the one shipped with the lab; None if neither has one."""
    return _load_helper(RECORD_NAME, load_detector, models_dir)


def load_number_splitter(models_dir=None) -> SplitNetwork | None:
    """The split network saved beside the models, else the one shipped with the lab; None if neither has one."""
    return _load_helper(SPLITTER_RECORD, load_splitter, models_dir)


def _load_helper(record_name: str, load: Callable[[Path], Helper], models_dir=None) -> Helper | None:
    """``load`` of the folder :func:`helper_folder` picks for ``record_name``, TensorFlow's start-up log kept off."""
    folder = helper_folder(record_name, models_dir)
    if folder is None:
        return None
    with native_stderr_silenced():
        return load(folder)


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
    """One :class:`Outcome` per path, with the not-a-digit verdict; an unreadable file yields an error and the rest
    go on."""
    screen: ScreenedDetector | None = None
    for path, model_input, models, error in prepared_files(paths, preprocess, model_names, models_dir):
        outcome = Outcome(path=str(path), model_input=model_input, error=error)
        if error is None:
            screen = screen or load_screen(models_dir)
            outcome.predictions = predict_digit(models, model_input)
            outcome.verdict = screen.verdict(model_input) if screen is not None else None
        yield outcome


@dataclass
class NumberOutcome:
    """What became of one file read as a number: each model's reading, or an error."""

    path: str
    readings: list[NumberReading] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    error: str | None = None


def read_number_files(
    paths: Iterable[str | os.PathLike], model_names: list[str], models_dir=None
) -> Iterator[NumberOutcome]:
    """One :class:`NumberOutcome` per path; an unreadable file yields an error and the rest go on.

    Pieces that do not look like digits (a dash, a comma, a currency sign) are marked and left out of the number.
    The model with the best recorded test accuracy decides where touching digits are cut (:func:`best_first`).

    Each image is read and cleaned before the models are loaded, so a run
    over unreadable files alone never starts TensorFlow.
    """
    helpers: tuple[ScreenedDetector | None, SplitNetwork | None, DigitClassifier] | None = None
    for path, cleaned, models, error in prepared_files(paths, _cleaned_ink, model_names, models_dir):
        outcome = NumberOutcome(path=str(path), error=error)
        if error is None:
            ink, size = cleaned
            if helpers is None:
                # The most accurate model cuts the number, whatever order the models were asked for in.
                judge = next(iter(best_first(models, recorded_accuracies(models_dir)).values()))
                helpers = (load_screen(models_dir), load_number_splitter(models_dir), judge)
            screen, splitter, judge = helpers
            try:
                outcome.segments = segment_ink(ink, size, judge, splitter)
                outcome.readings = read_segments(outcome.segments, models, digit_like(outcome.segments, screen))
            except DigitlabError as reading_error:
                outcome.error = with_path(path, reading_error)
        yield outcome


def _cleaned_ink(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int]]:
    """The ink mask of the image at ``path`` and the image's displayed size."""
    gray, size = displayed_gray(path)
    return number_ink(gray), size
