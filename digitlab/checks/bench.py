"""The benchmark: accuracy, speed, memory and size of the trained models on this machine.

Each model is measured in a fresh child process, so its peak resident memory
is its own (the process that loads it and predicts the whole test set) and
no model's warm caches flatter another's latency.
"""

import json
import multiprocessing
import os
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from digitlab import persistence
from digitlab.atomic import write_json_atomically
from digitlab.checks.samples import latency_summary, synthetic_canvas
from digitlab.clock import utc_timestamp
from digitlab.formatting import markdown_table
from digitlab.models.exported import EXPORT_FORMATS, FORMAT_LABELS
from digitlab.models.registry import REGISTRY

BENCHMARK_NAME = "benchmark.json"
LATENCY_CALLS = 300
# Drawings the Draw page's "how small a change flips it" is timed on: each costs a search of attacks per model.
FLIP_DRAWINGS = 5


def measure_model(name: str, models_dir: str, data_dir: str | None, latency_calls: int) -> dict[str, Any]:
    """Everything measured for one model, in the calling process."""
    from digitlab.data.mnist import load_mnist
    from digitlab.evaluation import classification_metrics, single_image_latencies, timed_probabilities

    images, labels = load_mnist("test", data_dir)
    started = time.perf_counter()
    model = persistence.load_model(name, models_dir)
    load_seconds = time.perf_counter() - started
    probabilities, batch_seconds = timed_probabilities(model, images)
    metrics = classification_metrics(labels, probabilities)
    latencies = single_image_latencies(model, images, latency_calls)
    return {
        "accuracy": metrics.accuracy,
        "errors": metrics.errors,
        "f1_macro": metrics.f1_macro,
        "load_seconds": round(load_seconds, 3),
        "batch_seconds": round(batch_seconds, 3),
        "throughput_images_per_second": round(len(images) / batch_seconds, 1),
        "single_image": latency_summary(latencies),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def measure_canvas_pipeline(models_dir: str, names: list[str], latency_calls: int) -> dict[str, float]:
    """A canvas drawing through preprocessing and every base model, as the draw page does it."""
    from digitlab.imaging.preprocess import preprocess
    from digitlab.recognise import predict_digit

    models = {name: persistence.load_model(name, models_dir) for name in names}
    canvas = synthetic_canvas()
    predict_digit(models, preprocess(canvas))
    latencies = np.empty(latency_calls)
    for call in range(latency_calls):
        started = time.perf_counter()
        predict_digit(models, preprocess(canvas))
        latencies[call] = (time.perf_counter() - started) * 1000
    return latency_summary(latencies)


def measure_not_a_digit_check(models_dir: str, latency_calls: int) -> dict[str, Any]:
    """What the not-a-digit decision adds to one drawing's reading: the detector's verdict on one model input."""
    from digitlab.imaging.preprocess import preprocess
    from digitlab.recognise import load_screen

    screen = load_screen(models_dir)
    if screen is None:
        return {"available": False}
    model_input = preprocess(synthetic_canvas())
    screen.verdict(model_input)
    latencies = np.empty(latency_calls)
    for call in range(latency_calls):
        started = time.perf_counter()
        screen.verdict(model_input)
        latencies[call] = (time.perf_counter() - started) * 1000
    return {"available": True, "single_image": latency_summary(latencies)}


def measure_layer_views(models_dir: str, names: list[str], latency_calls: int) -> dict[str, Any]:
    """Time to make every "inside the models" view (CNN, MLP, SVM) of one drawing, as the Draw page does."""
    from digitlab.imaging.preprocess import preprocess
    from digitlab.insight.layers import layer_views

    models = {name: persistence.load_model(name, models_dir) for name in names}
    model_input = preprocess(synthetic_canvas())
    views = layer_views(models, model_input)
    latencies = np.empty(latency_calls)
    for call in range(latency_calls):
        started = time.perf_counter()
        layer_views(models, model_input)
        latencies[call] = (time.perf_counter() - started) * 1000
    shown = [name for name in ("cnn", "mlp", "svm") if getattr(views, name) is not None]
    return {"views": shown, "all_views": latency_summary(latencies)}


def measure_smallest_flips(models_dir: str, names: list[str], drawings: int) -> dict[str, Any]:
    """Time to find every model's smallest flip of one drawing, as the Draw page's toggle does."""
    from digitlab.imaging.preprocess import preprocess
    from digitlab.insight.attacks import smallest_flips

    models = {name: persistence.load_model(name, models_dir) for name in names}
    inputs = [preprocess(synthetic_canvas(seed)) for seed in range(drawings + 1)]
    # The first drawing warms the networks' gradient functions up and is not timed.
    smallest_flips(models, inputs[0])
    seconds = np.empty(drawings)
    for index, model_input in enumerate(inputs[1:]):
        started = time.perf_counter()
        smallest_flips(models, model_input)
        seconds[index] = time.perf_counter() - started
    return {"models": names, "drawings": drawings, "all_models": latency_summary(seconds * 1000)}


def time_robustness(models_dir: str, data_dir: str | None, test_size: int | None = None) -> dict[str, Any]:
    """The robustness measurement of ``python -m digitlab robustness``, timed; its file is not written."""
    from digitlab.insight.robustness import measure_robustness

    robustness = measure_robustness(models_dir, data_dir, test_size=test_size)
    return {
        "seconds": robustness.seconds,
        "models": robustness.models,
        "corruptions": len(robustness.corruptions),
        "test_images": robustness.test_images,
        "attack_images": robustness.attack_images,
    }


def measure_explanations(models_dir: str, names: list[str], data_dir: str | None, images: int) -> dict[str, Any]:
    """Seconds per test image to compute every "why this answer" heat map of each model, as the pages do."""
    from digitlab.data.mnist import load_mnist
    from digitlab.insight.attribution import explain

    test_images, _ = load_mnist("test", data_dir)
    measured = {}
    for name in names:
        model = persistence.load_model(name, models_dir)
        explain(model, test_images[0], 0)
        digits = model.predict(test_images[:images])
        seconds = np.empty(images)
        for index in range(images):
            started = time.perf_counter()
            explain(model, test_images[index], int(digits[index]))
            seconds[index] = time.perf_counter() - started
        measured[name] = {
            "p50_ms": round(float(np.median(seconds)) * 1000, 1),
            "max_ms": round(seconds.max() * 1000, 1),
        }
    return measured


def measure_export(path: Path, export_format: str, data_dir: str | None, latency_calls: int) -> dict[str, Any]:
    """Accuracy, size and single-image latency of an exported file, run by its format's runtime."""
    from digitlab.data.mnist import load_mnist
    from digitlab.evaluation import single_image_latencies
    from digitlab.models.exported import RUNTIMES

    images, labels = load_mnist("test", data_dir)
    model = RUNTIMES[export_format](path)
    accuracy = float((model.predict(images) == labels).mean())
    latencies = single_image_latencies(model, images, latency_calls)
    return {"accuracy": accuracy, "size_bytes": path.stat().st_size, "single_image": latency_summary(latencies)}


def _in_child(function, *arguments):
    """Run ``function(*arguments)`` in a fresh process and return its result."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, arguments)


def retrain_seconds(name: str, data_dir: str | None, train_size: int | None, epochs: int | None):
    """Wall seconds and test accuracy of training ``name`` again from scratch, in a scratch folder."""
    from digitlab.training import train_and_record

    with tempfile.TemporaryDirectory() as scratch:
        entry = train_and_record(name, train_size=train_size, epochs=epochs, models_dir=scratch, data_dir=data_dir)
    return {"training_seconds": entry.training_seconds, "accuracy": entry.metrics.accuracy}


def train_reference(data_dir: str | None, epochs: int, train_size: int | None) -> dict[str, Any]:
    """Keras' "simple MNIST convnet" example, trained as the example does, measured like ours."""
    import keras

    from digitlab.data.mnist import load_mnist
    from digitlab.evaluation import single_image_latencies
    from digitlab.models.networks import build_reference_cnn
    from digitlab.models.neural import CNNClassifier
    from digitlab.training import training_subset

    train_images, train_labels = load_mnist("train", data_dir)
    train_images, train_labels = training_subset(train_images, train_labels, train_size, seed=0)
    test_images, test_labels = load_mnist("test", data_dir)
    keras.utils.set_random_seed(0)
    network = build_reference_cnn()
    network.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    started = time.perf_counter()
    network.fit(
        train_images.astype(np.float32)[..., None],
        keras.utils.to_categorical(train_labels, 10),
        batch_size=128,
        epochs=epochs,
        validation_split=0.1,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    model = CNNClassifier()
    model._set_network(network)
    predictions = model.predict(test_images)
    latencies = single_image_latencies(model, test_images)
    return {
        "epochs": epochs,
        "train_size": int(len(train_images)),
        "training_seconds": round(seconds, 2),
        "accuracy": float((predictions == test_labels).mean()),
        "errors": int((predictions != test_labels).sum()),
        "single_image": latency_summary(latencies),
        "parameters": int(network.count_params()),
    }


def run_benchmark(
    models_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    *,
    retrain: bool = False,
    names: list[str] | None = None,
    reference: bool = False,
    reference_epochs: int = 15,
    train_size: int | None = None,
    epochs: int | None = None,
    latency_calls: int = LATENCY_CALLS,
    time_to_accuracy: bool = False,
    load: bool = False,
    robustness: bool = False,
    flip_drawings: int = FLIP_DRAWINGS,
    output: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Measure the models in ``models_dir`` (all, or ``names``) and write ``benchmark.json`` beside them.

    ``time_to_accuracy`` also trains the quick recipes and Keras' examples, one after the other, and records
    their test-accuracy curves (``digitlab.checks.time_to_accuracy``); ``load`` times readings by 30 simulated
    users while two runs train (``digitlab.checks.load``); ``robustness`` times the whole measurement of
    ``python -m digitlab robustness`` (about 7 minutes) without writing its file.
    """
    folder = persistence.resolve_models_dir(models_dir)
    data = str(data_dir) if data_dir is not None else None
    manifest = persistence.read_manifest(folder)
    if not manifest.models:
        raise persistence.ModelUnavailableError(f"No trained models in {folder}; run 'python -m digitlab train'.")
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count()},
        "measured_at": utc_timestamp(),
        "latency_calls": latency_calls,
        "models": {},
    }
    unknown = set(names or ()) - set(manifest.models)
    if unknown:
        raise persistence.ModelUnavailableError(f"No trained {', '.join(sorted(unknown))} in {folder}.")
    for name, entry in manifest.models.items():
        if names and name not in names:
            continue
        measured = _in_child(measure_model, name, str(folder), data, latency_calls)
        measured["size_bytes"] = entry.size_bytes
        measured["training_seconds_manifest"] = entry.training_seconds
        measured["complexity"] = entry.complexity
        # A combining family is not retrained here; its training (its own networks, then the weight search)
        # is timed in the manifest.
        if retrain and not REGISTRY[name].members:
            measured["retrained"] = _in_child(retrain_seconds, name, data, train_size, epochs)
        results["models"][name] = measured
    base_models = [name for name in manifest.models if not REGISTRY[name].members]
    results["canvas_pipeline"] = _in_child(measure_canvas_pipeline, str(folder), base_models, latency_calls)
    results["not_a_digit_check"] = _in_child(measure_not_a_digit_check, str(folder), latency_calls)
    results["explanations"] = _in_child(measure_explanations, str(folder), list(results["models"]), data, 20)
    results["layer_views"] = _in_child(measure_layer_views, str(folder), base_models, latency_calls)
    results["smallest_flips"] = _in_child(measure_smallest_flips, str(folder), list(manifest.models), flip_drawings)
    if robustness:
        results["robustness"] = _in_child(time_robustness, str(folder), data)
    for name in results["models"]:
        for export_format in EXPORT_FORMATS:
            exported = folder / f"{name}.{export_format}"
            if exported.exists():
                results["models"][name][export_format] = _in_child(
                    measure_export, exported, export_format, data, latency_calls
                )
    if reference:
        results["reference"] = _in_child(train_reference, data, reference_epochs, train_size)
        if "cnn" in results["models"]:
            results["cnn_vs_reference"] = compare_with_reference(results["models"]["cnn"], results["reference"])
    if time_to_accuracy:
        from digitlab.checks.time_to_accuracy import time_to_accuracy as curves

        results["time_to_accuracy"] = curves(data, in_child=_in_child)
    if load:
        from digitlab.checks.load import run_load_test

        # In this process: the load test starts training processes of its own, which a pool's worker cannot.
        results["load"] = run_load_test(str(folder), data)
    destination = Path(output) if output is not None else persistence.writable_models_dir(folder) / BENCHMARK_NAME
    write_json_atomically(destination, results)
    results["written_to"] = str(destination)
    return results


def read_benchmark(path: str | os.PathLike) -> dict[str, Any]:
    """A ``benchmark.json`` written by :func:`run_benchmark`; empty when there is none or it cannot be read."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def compare_with_reference(ours: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """Our CNN over the reference: above 1 means more of that quantity."""
    return {
        "accuracy_ratio": round(ours["accuracy"] / reference["accuracy"], 5),
        "error_ratio": round(ours["errors"] / max(reference["errors"], 1), 4),
        "training_time_ratio": round(ours["training_seconds_manifest"] / reference["training_seconds"], 3),
        "latency_ratio": round(ours["single_image"]["p50_ms"] / reference["single_image"]["p50_ms"], 3),
    }


TABLE_HEADERS = (
    "model",
    "accuracy",
    "errors",
    "training (s)",
    "1 image p50 / p95 (ms)",
    "10k images (s)",
    "images/s",
    "peak memory (MB)",
    "size (MB)",
)


def _table_row(label: str, measured: dict[str, Any], training_seconds: float | None = None) -> list[str]:
    """One table row; figures a measurement lacks are left blank."""
    latency = measured["single_image"]

    def optional(key: str, template: str) -> str:
        return template.format(measured[key]) if key in measured else ""

    return [
        label,
        f"{measured['accuracy']:.2%}",
        optional("errors", "{}"),
        f"{training_seconds:.0f}" if training_seconds is not None else "",
        f"{latency['p50_ms']:.2f} / {latency['p95_ms']:.2f}",
        optional("batch_seconds", "{:.2f}"),
        optional("throughput_images_per_second", "{:,.0f}"),
        optional("peak_memory_mb", "{:.0f}"),
        f"{measured['size_bytes'] / 1e6:.2f}" if "size_bytes" in measured else "",
    ]


def benchmark_table(results: dict[str, Any]) -> str:
    """The benchmark as a markdown table, one row per model (and the reference when measured)."""
    rows = []
    for name, measured in results["models"].items():
        trained = measured.get("retrained", {}).get("training_seconds", measured["training_seconds_manifest"])
        rows.append(_table_row(name, measured, trained))
        for export_format in EXPORT_FORMATS:
            if export_format in measured:
                rows.append(_table_row(f"{name} ({FORMAT_LABELS[export_format]})", measured[export_format]))
    if "reference" in results:
        reference = results["reference"]
        label = f"reference convnet ({reference['epochs']} epochs)"
        rows.append(_table_row(label, reference, reference["training_seconds"]))
    pipeline = results["canvas_pipeline"]
    footer = (
        f"\n\nCanvas drawing through preprocessing and every base model: "
        f"p50 {pipeline['p50_ms']:.2f} ms, p95 {pipeline['p95_ms']:.2f} ms."
    )
    check = results.get("not_a_digit_check", {})
    if check.get("available"):
        footer += (
            f"\nThe not-a-digit check adds p50 {check['single_image']['p50_ms']:.2f} ms, "
            f"p95 {check['single_image']['p95_ms']:.2f} ms to one drawing's reading."
        )
    if "explanations" in results:
        footer += (
            "\nWhy-this-answer heat maps per image (median): "
            + ", ".join(f"{name} {timing['p50_ms']:.0f} ms" for name, timing in results["explanations"].items())
            + "."
        )
    if results.get("layer_views", {}).get("views"):
        views = results["layer_views"]
        footer += (
            f"\nInside-the-models views ({', '.join(name.upper() for name in views['views'])}) of one drawing: "
            f"p50 {views['all_views']['p50_ms']:.1f} ms, p95 {views['all_views']['p95_ms']:.1f} ms."
        )
    if "smallest_flips" in results:
        flips = results["smallest_flips"]
        footer += (
            f"\nHow small a change flips it (every model's search on one drawing, over {flips['drawings']} drawings): "
            f"p50 {flips['all_models']['p50_ms'] / 1000:.1f} s, p95 {flips['all_models']['p95_ms'] / 1000:.1f} s."
        )
    if "robustness" in results:
        measured = results["robustness"]
        footer += (
            f"\n`python -m digitlab robustness` ({len(measured['models'])} models, {measured['corruptions']} "
            f"corruptions of {measured['test_images']:,} test images, attacks on {measured['attack_images']:,}): "
            f"{measured['seconds']:.0f} s."
        )
    if "cnn_vs_reference" in results:
        ratios = results["cnn_vs_reference"]
        footer += (
            f"\nOur CNN against the reference: accuracy x{ratios['accuracy_ratio']}, errors x{ratios['error_ratio']}, "
            f"training time x{ratios['training_time_ratio']}, latency x{ratios['latency_ratio']}."
        )
    if results.get("load", {}).get("reading"):
        load = results["load"]
        footer += (
            f"\nUnder load ({load['users']} users, each reading a drawing about every {load['think_seconds']:g} s, "
            f"while {load['training_runs']} runs train): one reading p50 {load['reading']['p50_ms']:.1f} ms, p95 "
            f"{load['reading']['p95_ms']:.1f} ms, max {load['reading_max_ms']:.0f} ms over {load['readings']:,} "
            f"readings; {load['errors']} errors"
            + (
                f"; meanwhile the runs, at background priority, trained {load['training_steps']:,} batches."
                if "training_steps" in load
                else "."
            )
        )
    if "time_to_accuracy" in results:
        from digitlab.checks.time_to_accuracy import time_to_accuracy_table

        footer += "\n\nTime to accuracy (`bench --time-to-accuracy`):\n\n" + time_to_accuracy_table(
            results["time_to_accuracy"]
        )
    return measured_on(results) + markdown_table(TABLE_HEADERS, rows) + footer


def measured_on(results: dict[str, Any]) -> str:
    """A sentence giving the benchmark's date and the cores it ran on, as the table's figures depend on both."""
    if "measured_at" not in results:
        return ""
    cores = results.get("machine", {}).get("cpus")
    on = f" on {cores} CPU cores" if cores else ""
    return f"Measured on {results['measured_at'][:10]}{on}.\n\n"
