"""Time to accuracy: the quick recipes against Keras' examples, each curve measured in the same benchmark run.

Each network trains in a fresh child process, one after the other, on the
full MNIST training set. Four times per epoch (and at the end) a callback
measures its accuracy on the 10,000 test images, for reporting only: nothing
is chosen or stopped on them, and the seconds spent measuring are taken off
the training clock. The clock starts when the model is built (after the
libraries are imported), so it includes compiling the network and preparing
the data, and it runs through the validation each recipe does after each epoch.

The reference networks are trained as their examples do: Keras' simple MNIST
convnet (Adam, batches of 128, 15 epochs, a tenth of the training images held
out) and Keras' MNIST multilayer perceptron (RMSprop, batches of 128, 20
epochs, on all 60,000 images).
"""

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Test-set measurements per epoch: often enough to see when a curve crosses a line, rare enough to cost little.
MEASUREMENTS_PER_EPOCH = 4
REFERENCE_EPOCHS = {"cnn": 15, "mlp": 20}
REFERENCE_TITLES = {"cnn": "Keras' simple MNIST convnet", "mlp": "Keras' MNIST multilayer perceptron"}
# The accuracy each family's quick recipe should reach, beside the reference's own final accuracy.
MILESTONES = {"cnn": 0.99, "mlp": 0.98}
# The benchmark's targets (issue 17): the quick CNN reaches the reference's final accuracy in a quarter of its
# training time, and 99 % in a tenth.
TARGET_RATIOS = {"reference_final": 0.25, "milestone": 0.1}


@dataclass(frozen=True)
class Curve:
    """Test accuracy against training seconds for one network."""

    label: str
    epochs: int
    seconds: list[float]
    accuracy: list[float]

    @property
    def training_seconds(self) -> float:
        return self.seconds[-1]

    @property
    def final_accuracy(self) -> float:
        return self.accuracy[-1]

    def seconds_to(self, accuracy: float) -> float | None:
        """Training seconds at the first measurement at or above ``accuracy``; None if it never gets there."""
        for seconds, measured in zip(self.seconds, self.accuracy, strict=True):
            if measured >= accuracy:
                return seconds
        return None


def accuracy_clock(test_images: np.ndarray, test_labels: np.ndarray, steps_per_epoch: int, started: float):
    """A Keras callback that records test accuracy against training seconds since ``started``.

    It measures every ``steps_per_epoch / MEASUREMENTS_PER_EPOCH`` steps and once more at the end of
    training, and keeps the time it spends measuring off the clock.
    """
    import keras

    from digitlab.models.neural import batched_run, network_input, traced_forward

    pixels = network_input(test_images)
    every = max(1, steps_per_epoch // MEASUREMENTS_PER_EPOCH)

    class AccuracyClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.paused = 0.0
            self.steps = 0
            self.seconds: list[float] = []
            self.accuracy: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps % every == 0:
                self.measure()

        def on_train_end(self, logs=None):
            if self.steps % every:
                self.measure()

        def measure(self):
            pause = time.perf_counter()
            self.seconds.append(round(pause - started - self.paused, 3))
            if not hasattr(self, "forward"):
                # A traced inference pass: Model.predict inside training slows the training steps that follow.
                self.forward = traced_forward(self.model)
            predicted = batched_run(self.forward, pixels).argmax(axis=1)
            self.accuracy.append(float((predicted == test_labels).mean()))
            self.paused += time.perf_counter() - pause

    return AccuracyClock()


def quick_curve(name: str, data_dir: str | None) -> dict[str, Any]:
    """Train ``name`` with its quick recipe on the full training set and record its test-accuracy curve."""
    # Imported before the clock starts, as the reference imports it: loading TensorFlow is not training.
    import keras  # noqa: F401

    from digitlab.data.mnist import load_mnist
    from digitlab.training import build_model

    train_images, train_labels = load_mnist("train", data_dir)
    test_images, test_labels = load_mnist("test", data_dir)
    started = time.perf_counter()
    model = build_model(name, recipe="quick")
    steps_per_epoch = len(model.training_part(len(train_images))) // model.batch_size
    clock = accuracy_clock(test_images, test_labels, steps_per_epoch, started)
    model.fit(train_images, train_labels, callbacks=[clock])
    return asdict(Curve(f"quick {name.upper()}", model.epochs, clock.seconds, clock.accuracy))


def reference_curve(name: str, data_dir: str | None) -> dict[str, Any]:
    """Train the Keras example that ``name``'s quick recipe is measured against, as the example does."""
    import keras

    from digitlab.data.mnist import CLASSES, load_mnist
    from digitlab.models.networks import build_reference_cnn, build_reference_mlp
    from digitlab.models.neural import network_input

    train_images, train_labels = load_mnist("train", data_dir)
    test_images, test_labels = load_mnist("test", data_dir)
    keras.utils.set_random_seed(0)
    started = time.perf_counter()
    epochs = REFERENCE_EPOCHS[name]
    if name == "cnn":
        network, optimizer, held_out = build_reference_cnn(), "adam", 0.1
    else:
        network, optimizer, held_out = build_reference_mlp(), keras.optimizers.RMSprop(), 0.0
    network.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    steps_per_epoch = int(np.ceil(len(train_labels) * (1 - held_out) / 128))
    clock = accuracy_clock(test_images, test_labels, steps_per_epoch, started)
    network.fit(
        network_input(train_images),
        keras.utils.to_categorical(train_labels, CLASSES),
        batch_size=128,
        epochs=epochs,
        validation_split=held_out,
        callbacks=[clock],
        verbose=0,
    )
    return asdict(Curve(REFERENCE_TITLES[name], epochs, clock.seconds, clock.accuracy))


def compare_curves(name: str, quick: Curve, reference: Curve) -> dict[str, Any]:
    """Seconds to the reference's final accuracy and to the family's milestone, and their ratios."""
    milestone = MILESTONES[name]
    reached_final = quick.seconds_to(reference.final_accuracy)
    reached_milestone = quick.seconds_to(milestone)

    def ratio(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / reference.training_seconds, 4)

    return {
        "reference_final_accuracy": reference.final_accuracy,
        "reference_training_seconds": reference.training_seconds,
        "reference_seconds_to_milestone": reference.seconds_to(milestone),
        "milestone": milestone,
        "quick_final_accuracy": quick.final_accuracy,
        "quick_training_seconds": quick.training_seconds,
        "quick_seconds_to_reference_final": reached_final,
        "quick_seconds_to_milestone": reached_milestone,
        "ratio_to_reference_final": ratio(reached_final),
        "ratio_to_milestone": ratio(reached_milestone),
    }


def time_to_accuracy(data_dir: str | None, names: tuple[str, ...] = ("cnn", "mlp"), in_child=None) -> dict[str, Any]:
    """Each family's quick and reference curves and how they compare; ``in_child`` runs one training."""
    run = in_child or (lambda function, *arguments: function(*arguments))
    results: dict[str, Any] = {}
    for name in names:
        reference = Curve(**run(reference_curve, name, data_dir))
        quick = Curve(**run(quick_curve, name, data_dir))
        results[name] = {
            "reference": asdict(reference),
            "quick": asdict(quick),
            "comparison": compare_curves(name, quick, reference),
        }
    return results


@dataclass(frozen=True)
class FamilyCurves:
    """One family's quick and reference curves from ``benchmark.json``, and how they compare."""

    family: str
    quick: Curve
    reference: Curve
    comparison: dict[str, Any]


def recorded_curves(benchmark: dict[str, Any]) -> list[FamilyCurves]:
    """The time-to-accuracy curves a benchmark recorded; none when it was run without ``--time-to-accuracy``."""
    return [
        FamilyCurves(family, Curve(**measured["quick"]), Curve(**measured["reference"]), measured["comparison"])
        for family, measured in benchmark.get("time_to_accuracy", {}).items()
    ]


def time_to_accuracy_table(results: dict[str, Any]) -> str:
    """A markdown table of the comparisons, one row per family."""
    from digitlab.formatting import markdown_table

    headers = [
        "quick recipe vs example",
        "example: final accuracy, seconds",
        "quick: final accuracy, seconds",
        "quick: seconds to the example's final accuracy (ratio)",
        "quick: seconds to milestone (ratio)",
    ]

    def reached(seconds, ratio) -> str:
        return "not reached" if seconds is None else f"{seconds:.1f} (x{ratio:.3f})"

    rows = []
    for name, measured in results.items():
        comparison = measured["comparison"]
        rows.append(
            [
                f"{name.upper()}: {measured['quick']['epochs']} vs {measured['reference']['epochs']} epochs",
                f"{comparison['reference_final_accuracy']:.2%}, {comparison['reference_training_seconds']:.0f}",
                f"{comparison['quick_final_accuracy']:.2%}, {comparison['quick_training_seconds']:.0f}",
                reached(comparison["quick_seconds_to_reference_final"], comparison["ratio_to_reference_final"]),
                f"{comparison['milestone']:.0%}: "
                + reached(comparison["quick_seconds_to_milestone"], comparison["ratio_to_milestone"]),
            ]
        )
    return markdown_table(headers, rows)
