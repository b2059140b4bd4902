"""Sweeps: several training runs that differ in one or two settings, queued together and read as one result.

A sweep over the training-set size gives a learning curve; one over the SVM's
``C`` and ``gamma``, a grid of accuracies. Its runs are ordinary runs in the
registry's line (so the limit on runs training at once holds for them too),
tagged with the sweep they belong to; :func:`sweep_result` reads them back as
points on the sweep's axes, finished or not.
"""

import itertools
import math
from dataclasses import dataclass, replace
from typing import Any

from digitlab.lab.runs import (
    FINISHED,
    KERAS_FAMILIES,
    LARGEST_SVM_TRAIN_SIZE,
    InvalidRequestError,
    Run,
    SweepRecord,
    TrainingRequest,
)

# The settings a sweep may vary, by family: every family learns from a number of images; the networks train for
# a number of epochs, the SVM has its penalty and kernel width.
SWEEPABLE = {"train_size": "training images", "epochs": "epochs", "C": "C", "gamma": "gamma"}
KERAS_SETTINGS = ("train_size", "epochs")
SVM_SETTINGS = ("train_size", "C", "gamma")
# Settings that count something, so a sweep's values for them are whole numbers.
WHOLE_NUMBERS = ("train_size", "epochs")
# Settings whose useful values span orders of magnitude; their axes are drawn on a log scale.
LOG_SCALE = ("train_size", "C", "gamma")
MAX_SETTINGS = 2
# More runs than this would hold the training slots of a class for a long time; a sweep is a few points.
MAX_SWEEP_RUNS = 24
# Values the Train page offers for each setting, and the ones it starts from.
SUGGESTED_VALUES: dict[str, tuple[float, ...]] = {
    "train_size": (500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000),
    "epochs": (1, 2, 3, 4, 6, 8, 10, 15, 20),
    "C": (0.1, 0.5, 1, 2, 5, 10, 50, 100),
    "gamma": (0.005, 0.01, 0.02, 0.03, 0.05, 0.1),
}
STARTING_VALUES: dict[str, tuple[float, ...]] = {
    "train_size": (1_000, 2_000, 5_000, 10_000),
    "epochs": (1, 2, 4, 8),
    "C": (1, 5, 10),
    "gamma": (0.01, 0.02, 0.05),
}


def sweepable_settings(family: str) -> tuple[str, ...]:
    """The settings a sweep of ``family`` may vary."""
    return KERAS_SETTINGS if family in KERAS_FAMILIES else SVM_SETTINGS


def offered_values(setting: str, family: str) -> tuple[float, ...]:
    """The values a form offers for ``setting``: the suggested ones that ``family`` can train with."""
    values = SUGGESTED_VALUES[setting]
    if setting == "train_size" and family not in KERAS_FAMILIES:
        return tuple(value for value in values if value <= LARGEST_SVM_TRAIN_SIZE)
    return values


@dataclass(frozen=True)
class SweepRequest:
    """What a user asks to sweep: a run to start from and, for one or two of its settings, the values to try.

    Every combination of the values is one run; the other settings are the base run's.
    """

    base: TrainingRequest
    axes: dict[str, tuple[float, ...]]

    def __post_init__(self):
        allowed = sweepable_settings(self.base.family)
        if not self.axes:
            raise InvalidRequestError("Choose one or two settings to sweep.")
        if len(self.axes) > MAX_SETTINGS:
            raise InvalidRequestError(
                f"A sweep varies one or two settings, not {len(self.axes)}; the others stay as in a single run."
            )
        for name in self.axes:
            if name not in allowed:
                raise InvalidRequestError(
                    f"A {self.base.family.upper()} sweep cannot vary {name!r}; choose from {', '.join(allowed)}."
                )
            values = self.axes[name]
            if not all(math.isfinite(value) for value in values):
                raise InvalidRequestError(f"The values of {SWEEPABLE[name]} must be numbers, not {values}.")
            if name in WHOLE_NUMBERS and any(value != int(value) for value in values):
                raise InvalidRequestError(f"The values of {SWEEPABLE[name]} must be whole numbers, not {values}.")
            if len(self.ordered_axes()[name]) < 2:
                raise InvalidRequestError(
                    f"Give at least two different values of {SWEEPABLE[name]} to sweep; one value is a single run."
                )
        if self.run_count > MAX_SWEEP_RUNS:
            raise InvalidRequestError(
                f"This sweep would queue {self.run_count} runs; at most {MAX_SWEEP_RUNS} fit in one sweep, so "
                f"choose fewer values."
            )
        # Every run's settings are checked now, so a bad value is reported before anything is queued.
        self.requests()

    @property
    def run_count(self) -> int:
        return math.prod(len(values) for values in self.ordered_axes().values())

    def ordered_axes(self) -> dict[str, list[float]]:
        """Each setting's distinct values in increasing order (counts as whole numbers), as its axis is drawn."""
        return {
            name: sorted({int(value) if name in WHOLE_NUMBERS else float(value) for value in values})
            for name, values in self.axes.items()
        }

    def requests(self) -> list[TrainingRequest]:
        """One request per combination of the values, the last setting varying fastest."""
        axes = self.ordered_axes()
        return [
            replace(self.base, **dict(zip(axes, combination, strict=True)))
            for combination in itertools.product(*axes.values())
        ]


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep, placed on the sweep's axes."""

    run_id: int
    settings: dict[str, float]
    status: str
    accuracy: float | None
    training_seconds: float | None
    cancel_requested: bool = False


@dataclass(frozen=True)
class SweepResult:
    """A sweep's runs as points on its axes; ``accuracy`` is None where a run has not succeeded (yet)."""

    sweep: SweepRecord
    points: list[SweepPoint]

    @property
    def settings(self) -> list[str]:
        return list(self.sweep.axes)

    @property
    def finished(self) -> int:
        return sum(point.status in FINISHED for point in self.points)

    @property
    def cancellable(self) -> int:
        """How many of the runs have not ended and have not been asked to stop."""
        return sum(point.status not in FINISHED and not point.cancel_requested for point in self.points)

    @property
    def succeeded(self) -> list[SweepPoint]:
        return [point for point in self.points if point.accuracy is not None]

    def best(self) -> SweepPoint | None:
        """The succeeded run with the highest test accuracy (for reading the result, not for choosing a model)."""
        return max(self.succeeded, key=lambda point: point.accuracy, default=None)

    def grid(self) -> list[list[SweepPoint | None]]:
        """For a two-setting sweep: rows along the second setting, columns along the first."""
        if len(self.settings) != 2:
            raise ValueError("Only a sweep of two settings has a grid.")
        first, second = self.settings
        placed = {(point.settings[first], point.settings[second]): point for point in self.points}
        return [[placed.get((x, y)) for x in self.sweep.axes[first]] for y in self.sweep.axes[second]]

    def title(self) -> str:
        """``Sweep #3 · SVM · C x gamma · 5 of 9 runs ended``."""
        varied = " x ".join(SWEEPABLE[name] for name in self.settings)
        return (
            f"Sweep #{self.sweep.id} · {self.sweep.family.upper()} · {varied} · "
            f"{self.finished} of {len(self.points)} runs ended"
        )


def sweep_result(sweep: SweepRecord, runs: list[Run]) -> SweepResult:
    """Place each of the sweep's runs at its values of the swept settings."""
    points = []
    for run in runs:
        test = run.metrics.get("test", {})
        points.append(
            SweepPoint(
                run_id=run.id,
                settings={name: float(run.parameters[name]) for name in sweep.axes},
                status=run.status,
                accuracy=float(test["accuracy"]) if run.status == "succeeded" and "accuracy" in test else None,
                training_seconds=run.training_seconds,
                cancel_requested=run.cancel_requested,
            )
        )
    return SweepResult(sweep, points)


def format_value(setting: str, value: float) -> str:
    """A swept value as a label: ``5,000`` images, ``8`` epochs, ``0.02`` for gamma."""
    if setting in WHOLE_NUMBERS:
        return f"{int(value):,}"
    return f"{value:g}"


def result_table(result: SweepResult) -> list[dict[str, Any]]:
    """One row per run: its swept values, status, accuracy and training time, for a table or a script."""
    return [
        {
            "run": point.run_id,
            **{name: point.settings[name] for name in result.settings},
            "status": point.status,
            "accuracy": point.accuracy,
            "training_seconds": point.training_seconds,
        }
        for point in result.points
    ]
