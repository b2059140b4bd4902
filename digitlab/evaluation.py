"""Metrics and timings of trained models on the MNIST test set."""

import time
from dataclasses import replace

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from digitlab.data.mnist import CLASSES, load_mnist
from digitlab.errors import ModelUnavailableError
from digitlab.manifest import Metrics, Timing
from digitlab.models.base import DigitClassifier, Predictor

# The Metrics fields that `evaluate` compares with the manifest; differences below this are float noise.
COMPARED_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro")
METRIC_TOLERANCE = 1e-4
SINGLE_IMAGE_CALLS = 50


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> Metrics:
    """Accuracy, macro and per-class precision/recall/F1, and the confusion matrix."""
    labels = np.asarray(labels)
    predictions = np.asarray(probabilities).argmax(axis=1)
    classes = list(range(CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    return Metrics(
        accuracy=float((predictions == labels).mean()),
        errors=int((predictions != labels).sum()),
        precision_macro=float(precision.mean()),
        recall_macro=float(recall.mean()),
        f1_macro=float(f1.mean()),
        per_class={
            "precision": precision.round(6).tolist(),
            "recall": recall.round(6).tolist(),
            "f1": f1.round(6).tolist(),
            "support": support.tolist(),
        },
        confusion_matrix=confusion_matrix(labels, predictions, labels=classes).tolist(),
    )


def timed_probabilities(model: Predictor, images: np.ndarray) -> tuple[np.ndarray, float]:
    """The model's probabilities for ``images`` and the seconds the whole batch took."""
    model.predict_proba(images[:1])
    start = time.perf_counter()
    probabilities = model.predict_proba(images)
    return probabilities, time.perf_counter() - start


def single_image_latencies(model: Predictor, images: np.ndarray, calls: int = SINGLE_IMAGE_CALLS) -> np.ndarray:
    """Milliseconds of ``calls`` one-image ``predict_proba`` calls, after a warm-up call."""
    model.predict_proba(images[:1])
    latencies = np.empty(calls)
    for call in range(calls):
        image = images[call % len(images)]
        start = time.perf_counter()
        model.predict_proba(image)
        latencies[call] = (time.perf_counter() - start) * 1000
    return latencies


def evaluate_model(
    model: DigitClassifier, images: np.ndarray, labels: np.ndarray
) -> tuple[Metrics, Timing, np.ndarray]:
    """Metrics and timing of one model on a test set, and its probabilities."""
    probabilities, batch_seconds = timed_probabilities(model, images)
    metrics = classification_metrics(labels, probabilities)
    timing = Timing(
        batch_images=int(len(images)),
        batch_seconds=round(batch_seconds, 4),
        single_image_ms=round(float(np.median(single_image_latencies(model, images))), 4),
    )
    return metrics, timing, probabilities


def metric_differences(recorded: Metrics | None, recomputed: Metrics) -> dict[str, tuple[float | None, float]]:
    """Metrics whose recomputed value differs from the recorded one (None: not recorded) by more than float noise."""
    differences = {}
    for key in COMPARED_METRICS:
        before = None if recorded is None else getattr(recorded, key)
        after = getattr(recomputed, key)
        if before is None or abs(before - after) > METRIC_TOLERANCE:
            differences[key] = (before, after)
    return differences


def evaluate_folder(models_dir=None, data_dir=None, *, write: bool = False) -> tuple[str, list[str]]:
    """Recompute every model's test metrics from its artefact and compare them with the manifest.

    Returns a markdown table of the recomputed figures and one line per
    difference from the manifest. With ``write``, the manifest and stored
    probabilities are updated to the recomputed values.
    """
    from digitlab import persistence
    from digitlab.formatting import markdown_table

    images, labels = load_mnist("test", data_dir)
    manifest = persistence.read_manifest(models_dir)
    if not manifest.models:
        raise ModelUnavailableError("No trained models found; run 'python -m digitlab train' first.")
    rows, differences, probabilities = [], [], {}
    for name, entry in list(manifest.models.items()):
        model = persistence.load_model(name, models_dir)
        metrics, timing, probabilities[name] = evaluate_model(model, images, labels)
        model_differences = metric_differences(entry.metrics, metrics)
        for key, (before, after) in model_differences.items():
            differences.append(f"{name}: {key} is {after:.6f}, the manifest says {before}")
        manifest.models[name] = replace(entry, metrics=metrics, timing=timing)
        rows.append(
            [
                name,
                f"{metrics.accuracy:.2%}",
                metrics.errors,
                f"{metrics.precision_macro:.4f}",
                f"{metrics.recall_macro:.4f}",
                f"{metrics.f1_macro:.4f}",
                f"{timing.batch_seconds:.2f}",
                f"{timing.single_image_ms:.2f}",
                "DIFFERS" if model_differences else "matches",
            ]
        )
    if write:
        persistence.write_manifest(manifest, models_dir)
        persistence.save_test_probabilities(probabilities, models_dir)
    headers = ["model", "accuracy", "errors", "precision", "recall", "F1", "10k images (s)", "1 image (ms)", "manifest"]
    return markdown_table(headers, rows), differences
