"""Train a model family on MNIST's training set, score it on the test set, and record it.

Only the 60,000 training images are used for fitting, early stopping and
calibration; the test set is used once, after training, to score the model.
"""

import json
import os
import platform
import time
from dataclasses import replace
from importlib import metadata

import numpy as np

from digitlab import persistence
from digitlab.clock import utc_timestamp
from digitlab.data.mnist import data_checksum, load_mnist
from digitlab.errors import ModelUnavailableError
from digitlab.evaluation import evaluate_model
from digitlab.manifest import ModelEntry
from digitlab.models.base import ProgressCallback
from digitlab.models.neural import KerasClassifier
from digitlab.models.registry import REGISTRY
from digitlab.styles import StyleExamples, style_examples

LIBRARIES = ("numpy", "scipy", "scikit-learn", "skops", "tensorflow", "keras")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for library in LIBRARIES:
        try:
            versions[library] = metadata.version(library)
        except metadata.PackageNotFoundError:
            versions[library] = "not installed"
    return versions


def training_subset(images: np.ndarray, labels: np.ndarray, size: int | None, seed: int):
    """A random subset of ``size`` training images (all of them when ``size`` is None)."""
    if size is None or size >= len(images):
        return images, labels
    if size < 100:
        raise ValueError(f"train_size must be at least 100, not {size}.")
    chosen = np.sort(np.random.default_rng(seed).choice(len(images), size, replace=False))
    return images[chosen], labels[chosen]


def registry_position(name: str) -> int:
    """Where ``name`` stands in the registry; names it does not know come last."""
    return list(REGISTRY).index(name) if name in REGISTRY else len(REGISTRY)


def build_model(
    name: str, *, seed: int = 0, epochs: int | None = None, recipe: str | None = None, reuse: bool = False, **overrides
):
    """A fresh, unfitted model of the named family; ``recipe="quick"`` starts from the family's quick settings,
    ``reuse`` (a model that will start from a saved one) from its reuse settings."""
    if name not in REGISTRY:
        raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(REGISTRY)}.")
    family = REGISTRY[name]
    if recipe is not None:
        if "recipe" not in family._get_param_names():
            raise ValueError(f"The {family.title.lower()} has one training recipe; leave the recipe out.")
        overrides = {**(family.quick_settings if recipe == "quick" else {}), **overrides, "recipe": recipe}
    if reuse:
        overrides = {**family.reuse_settings, **overrides}
    # Epochs only mean something to families that train networks; the SVM trains to convergence.
    if epochs is not None and family.trains_in_epochs:
        overrides["epochs"] = epochs
    return family(seed=seed, **overrides)


def reusable_artifact(model, models_dir, train_images: np.ndarray, train_labels: np.ndarray):
    """The manifest entry and verified path of the saved model of ``model``'s family that it may reuse.

    A saved model is reused only when it was trained on the same images with the same hyperparameters (those
    its family's ``reuse_requires`` names, or all of them), so that the part kept and the part fitted again hold
    out the same validation images.
    """
    if model.reuses is None:
        raise ModelUnavailableError(f"The {model.title.lower()} has nothing it can reuse; train it without reusing.")
    entry, path = persistence.verified_artifact(model.name, models_dir)
    # The manifest holds the settings as JSON (a tuple comes back as a list), so they are compared as JSON.
    wanted = json.loads(json.dumps(model.get_params()))
    if model.reuse_requires is not None:
        wanted = {name: wanted[name] for name in model.reuse_requires}
    differing = sorted(name for name, value in wanted.items() if entry.hyperparameters.get(name, value) != value)
    if differing:
        raise ModelUnavailableError(
            f"The saved {model.name} was trained with other settings ({', '.join(differing)}); train it whole."
        )
    if entry.train_data_sha256 != data_checksum(train_images, train_labels):
        raise ModelUnavailableError(f"The saved {model.name} was trained on other images; train it whole.")
    return entry, path


def writing_style_examples(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    cache: dict[tuple[str, int, int], StyleExamples] | None,
    progress: ProgressCallback | None,
) -> StyleExamples:
    """``count`` writing-style examples made from the images ``model`` fits on, from ``cache`` when it has them."""
    part = model.training_part(len(images))
    key = (data_checksum(images[part], labels[part]), count, seed)
    if cache is not None and key in cache:
        return cache[key]

    def report(done: int, total: int) -> None:
        if progress:
            progress(0, 0, {"stage": f"making writing-style examples ({done:,} of {total:,})"})

    styles = style_examples(images[part], labels[part], count=count, seed=seed, progress=report)
    if cache is not None:
        cache[key] = styles
    return styles


def train_and_record(
    name: str,
    *,
    seed: int = 0,
    epochs: int | None = None,
    train_size: int | None = None,
    models_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    verbose: int | str = 0,
    extra_training: tuple[np.ndarray, np.ndarray] | None = None,
    style_cache: dict[tuple[str, int, int], StyleExamples] | None = None,
    reuse: bool = False,
    **overrides,
) -> ModelEntry:
    """Train one model, evaluate it on the test set, save it and update the manifest entry.

    ``extra_training`` (images, labels) are added to the sampled MNIST training images, e.g. users' own drawings.
    Pass the same ``style_cache`` (an empty dict at first) when training several models on the same images, so the
    writing-style examples (minutes of rendering) are made once. With ``reuse``, the family keeps what it
    can of the model of its kind saved in ``models_dir`` (``family.reuses`` says what) and fits the rest again,
    starting from the family's ``reuse_settings``; the recorded training time is then the saved model's plus
    this fit's.
    """
    train_images, train_labels = load_mnist("train", data_dir)
    test_images, test_labels = load_mnist("test", data_dir)
    train_images, train_labels = training_subset(train_images, train_labels, train_size, seed)
    if extra_training is not None:
        train_images = np.concatenate([train_images, np.asarray(extra_training[0], dtype=train_images.dtype)])
        train_labels = np.concatenate([train_labels, np.asarray(extra_training[1], dtype=train_labels.dtype)])
    model = build_model(name, seed=seed, epochs=epochs, reuse=reuse, **overrides)
    fit_options = {"verbose": verbose} if isinstance(model, KerasClassifier) else {}
    if model.members:
        fit_options["members"] = {member: persistence.load_model(member, models_dir) for member in model.members}
    earlier_seconds = 0.0
    if reuse:
        saved, fit_options["reuse_from"] = reusable_artifact(model, models_dir, train_images, train_labels)
        earlier_seconds = saved.training_seconds
    started = time.perf_counter()
    wanted = model.extra_examples_wanted(len(train_images))
    if wanted:
        styles = writing_style_examples(model, train_images, train_labels, wanted, seed, style_cache, progress)
        fit_options["extra_examples"] = (styles.images, styles.labels)
    model.fit(train_images, train_labels, progress=progress, **fit_options)
    training_seconds = earlier_seconds + time.perf_counter() - started
    metrics, timing, probabilities = evaluate_model(model, test_images, test_labels)
    entry = replace(
        persistence.save_artifact(model, models_dir),
        family=name,
        title=model.title,
        hyperparameters=model.get_params(),
        seed=seed,
        train_size=int(len(train_images)),
        train_data_sha256=data_checksum(train_images, train_labels),
        test_data_sha256=data_checksum(test_images, test_labels),
        library_versions=library_versions(),
        complexity=model.complexity(),
        training_seconds=round(training_seconds, 2),
        training_notes=model.training_notes(),
        trained_at=utc_timestamp(),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs",
        metrics=metrics,
        timing=timing,
        history=model.history_ if isinstance(model, KerasClassifier) else None,
    )
    manifest = persistence.read_manifest(models_dir)
    models = {**manifest.models, name: entry}
    # Pages and tables list models in manifest order, so it follows the registry's whatever order they were trained in.
    models = dict(sorted(models.items(), key=lambda item: registry_position(item[0])))
    persistence.write_manifest(replace(manifest, models=models), models_dir)
    persistence.save_test_probabilities({name: probabilities}, models_dir)
    return entry
