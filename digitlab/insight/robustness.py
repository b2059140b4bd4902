"""Robustness, compared: every model's accuracy under each corruption and under L-infinity attacks.

``python -m digitlab robustness`` measures the models of a folder on the 10,000
test images under each corruption of :mod:`digitlab.insight.corruptions`, and on
a fixed subset of 1,000 test images under projected gradient descent at eps
0.05, 0.1 and 0.2: directly on the Keras networks, and for the models without a
gradient (the SVM, the ensemble) as a transfer attack, the images crafted on
the CNN. It writes ``robustness.json`` beside the models with the SHA-256 of
each model it measured; a file measured on other models is refused as out of
date, as the insight file is.
"""

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from digitlab.atomic import write_json_atomically
from digitlab.data.mnist import load_mnist
from digitlab.errors import ModelUnavailableError
from digitlab.insight.attacks import keras_gradient, pgd
from digitlab.insight.corruptions import CORRUPTIONS, corrupt
from digitlab.manifest import Manifest
from digitlab.models.neural import KerasClassifier
from digitlab.persistence import load_model, read_manifest, resolve_models_dir, writable_models_dir

ROBUSTNESS_NAME = "robustness.json"
ROBUSTNESS_COMMAND = "python -m digitlab robustness"
ROBUSTNESS_SCHEMA = 1
ATTACK_EPSILONS = (0.05, 0.1, 0.2)
ATTACK_IMAGES = 1_000
# The model whose gradient crafts the images that the models without one are attacked with.
TRANSFER_SOURCE = "cnn"
# How a model with a gradient of its own is attacked, as the file records it.
DIRECT_ATTACK = "PGD on its own gradient"
# How a model without one is attacked, as the file records it, with the name of the model whose images were used.
TRANSFER_ATTACK = "transfer: PGD images crafted on the {source}"
ProgressCallback = Callable[[str], None]


class RobustnessUnavailableError(ModelUnavailableError):
    """The robustness file is missing, damaged or measured on other models than those in the folder."""


@dataclass(frozen=True)
class Robustness:
    """Accuracies by model: on the clean test images, under each corruption, and under each attack strength."""

    clean: dict[str, float]
    corruptions: dict[str, dict[str, float]]  # corruption -> model -> accuracy
    attacks: dict[str, dict[str, float]]  # model -> eps (as text) -> accuracy on the attack subset
    attack_methods: dict[str, str]  # model -> how it was attacked
    model_sha256: dict[str, str]
    test_images: int
    attack_images: int
    seconds: float
    schema: int = ROBUSTNESS_SCHEMA

    @property
    def models(self) -> list[str]:
        return list(self.clean)

    def attacked_directly(self, model: str) -> bool:
        """Whether the attack followed the model's own gradient (else its images were crafted on another model)."""
        return self.attack_methods.get(model) == DIRECT_ATTACK

    def transfer_source(self, model: str) -> str | None:
        """The model whose images ``model`` was attacked with, for a transfer attack; None otherwise."""
        prefix = TRANSFER_ATTACK.format(source="")
        method = self.attack_methods.get(model, "")
        return method.removeprefix(prefix) if method.startswith(prefix) else None

    def mean_corruption_error(self, model: str) -> float:
        """The mean error rate over the corruptions (MNIST-C's summary, without a baseline to divide by)."""
        return float(np.mean([1.0 - accuracies[model] for accuracies in self.corruptions.values()]))


def measure_robustness(
    models_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    *,
    test_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> Robustness:
    """Measure every model of the folder under each corruption and attack; ``test_size`` limits the test images."""
    started = time.perf_counter()
    report = progress or (lambda stage: None)
    folder = resolve_models_dir(models_dir)
    manifest = read_manifest(folder)
    if not manifest.models:
        raise ModelUnavailableError(f"No trained models in {folder}; run 'python -m digitlab train'.")
    models = {name: load_model(name, folder) for name in manifest.models}
    images, labels = load_mnist("test", data_dir)
    if test_size is not None:
        images, labels = images[:test_size], labels[:test_size]

    def accuracies(batch: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        return {name: float((model.predict(batch) == truth).mean()) for name, model in models.items()}

    report("clean test images")
    clean = accuracies(images, labels)
    corrupted = {}
    for number, name in enumerate(CORRUPTIONS, start=1):
        report(f"corruption {number} of {len(CORRUPTIONS)}: {name}")
        corrupted[name] = accuracies(corrupt(images, name, seed=number), labels)
    attacks, methods = attack_accuracies(models, images, labels, report)
    return Robustness(
        clean=clean,
        corruptions=corrupted,
        attacks=attacks,
        attack_methods=methods,
        model_sha256={name: entry.sha256 for name, entry in manifest.models.items()},
        test_images=len(labels),
        attack_images=min(ATTACK_IMAGES, len(labels)),
        seconds=round(time.perf_counter() - started, 1),
    )


def attack_subset(count: int, size: int = ATTACK_IMAGES, seed: int = 0) -> np.ndarray:
    """The fixed test images the attacks use: ``size`` of ``count``, drawn once by ``seed``, in order."""
    return np.sort(np.random.default_rng(seed).choice(count, size=min(size, count), replace=False))


def attack_accuracies(models, images, labels, report: ProgressCallback):
    """Accuracy under PGD at each eps: direct for Keras networks, transferred from the CNN's images for the others."""
    subset = attack_subset(len(labels))
    images, labels = images[subset], labels[subset]
    keras_models = {name: model for name, model in models.items() if isinstance(model, KerasClassifier)}
    source = TRANSFER_SOURCE if TRANSFER_SOURCE in keras_models else next(iter(keras_models), None)
    accuracies: dict[str, dict[str, float]] = {name: {} for name in models}
    methods = {
        name: DIRECT_ATTACK if name in keras_models else TRANSFER_ATTACK.format(source=source) for name in models
    }
    for eps in ATTACK_EPSILONS:
        crafted = {}
        for name, model in keras_models.items():
            report(f"attack at eps {eps:g}: PGD on the {name}")
            crafted[name] = pgd(keras_gradient(model.network_), images, labels, eps)
        for name, model in models.items():
            attacked = crafted.get(name, crafted.get(source))
            if attacked is None:
                methods[name] = "not attacked: no model with a gradient to craft images on"
                continue
            accuracies[name][f"{eps:g}"] = float((model.predict(attacked) == labels).mean())
    return accuracies, methods


def save_robustness(robustness: Robustness, models_dir: str | os.PathLike | None = None) -> Path:
    path = writable_models_dir(models_dir) / ROBUSTNESS_NAME
    write_json_atomically(path, asdict(robustness))
    return path


def load_robustness(models_dir: str | os.PathLike | None = None, manifest: Manifest | None = None) -> Robustness:
    """The stored measurements, refused when missing, damaged or measured on other models than the folder's."""
    folder = resolve_models_dir(models_dir)
    path = folder / ROBUSTNESS_NAME
    command = ROBUSTNESS_COMMAND if models_dir is None else f"{ROBUSTNESS_COMMAND} --models-dir {folder}"
    if not path.exists():
        raise RobustnessUnavailableError(
            f"{path} is missing; run '{command}' to measure it (about 7 minutes on 2 cores)."
        )
    try:
        recorded = json.loads(path.read_text())
        robustness = Robustness(**recorded)
    except (OSError, ValueError, TypeError) as error:
        raise RobustnessUnavailableError(f"{path} is damaged ({error}); run '{command}' again.") from error
    manifest = read_manifest(folder) if manifest is None else manifest
    current = {name: entry.sha256 for name, entry in manifest.models.items()}
    if robustness.schema != ROBUSTNESS_SCHEMA or robustness.model_sha256 != current:
        raise RobustnessUnavailableError(
            f"{path} was measured on other models than those in {folder}, so its figures would be out of date; "
            f"run '{command}' to measure them again."
        )
    return robustness
