"""Export the Keras models to TensorFlow Lite or ONNX for mobile, edge and server use, with a parity check."""

import contextlib
import io
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from digitlab import persistence
from digitlab.atomic import save_atomically, write_atomically
from digitlab.data.mnist import IMAGE_SHAPE, load_mnist
from digitlab.models.base import DigitClassifier
from digitlab.models.exported import EXPORT_FORMATS, FORMAT_TITLES, RUNTIMES, ExportedClassifier
from digitlab.models.neural import KerasClassifier

# The exported model must agree with the Keras model on this share of test images...
MIN_AGREEMENT = 0.999
# ...and lose at most this much accuracy (a fraction, i.e. 0.05 points).
MAX_ACCURACY_LOSS = 0.0005


def convert_to_tflite(model: KerasClassifier) -> bytes:
    """The model's inference graph as a TensorFlow Lite flatbuffer (float32, no quantisation)."""
    import tensorflow as tf

    function = model._forward.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model.network_)
    return converter.convert()


def write_tflite(model: KerasClassifier, destination: Path) -> None:
    write_atomically(destination, convert_to_tflite(model))


def inference_network(model: KerasClassifier):
    """The model's network without its augmentation layers, sharing the trained layers and so their weights.

    The augmentation layers pass images through unchanged outside training, but an exporter would still
    have to trace them, and ONNX has no use for their random-number state.
    """
    import keras

    from digitlab.models.networks import INPUT_SHAPE, augmentation_layers

    augmentation_types = tuple({type(layer) for layer in augmentation_layers(seed=0)})
    network = model.network_
    kept = [layer for layer in network.layers if not isinstance(layer, augmentation_types)]
    return keras.Sequential([keras.Input(INPUT_SHAPE, name=network.inputs[0].name), *kept], name=network.name)


def write_onnx(model: KerasClassifier, destination: Path) -> None:
    """Keras' own ONNX exporter (tf2onnx on the TensorFlow backend) applied to the inference network."""
    import keras

    network = inference_network(model)
    # A network assembled from trained layers has never been called, so Keras cannot infer its input itself;
    # the batch axis stays open so that one file serves single images and whole test sets.
    signature = [keras.InputSpec(shape=(None, *IMAGE_SHAPE, 1), dtype="float32", name=network.inputs[0].name)]

    def export(temporary: Path) -> None:
        # The library never prints: anything the exporter writes to stdout is dropped. Keras' numpy 2
        # compatibility patch for tf2onnx probes numpy.object, which numpy answers with a FutureWarning.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*np\\.object.*", category=FutureWarning)
            network.export(str(temporary), format="onnx", verbose=False, input_signature=signature)

    save_atomically(destination, export)


WRITERS = {"tflite": write_tflite, "onnx": write_onnx}


def parity_report(
    model: DigitClassifier, exported: ExportedClassifier, images: np.ndarray, labels: np.ndarray
) -> dict[str, Any]:
    """How often the export and the model agree on ``images``, their accuracies, and whether that is enough."""
    keras_predictions = model.predict(images)
    exported_predictions = exported.predict(images)
    report = {
        "agreement": float((keras_predictions == exported_predictions).mean()),
        "keras_accuracy": float((keras_predictions == labels).mean()),
        f"{exported.format}_accuracy": float((exported_predictions == labels).mean()),
    }
    report["parity_ok"] = (
        report["agreement"] >= MIN_AGREEMENT
        and report["keras_accuracy"] - report[f"{exported.format}_accuracy"] <= MAX_ACCURACY_LOSS
    )
    return report


def export_model(
    name: str,
    models_dir=None,
    data_dir=None,
    *,
    output: str | os.PathLike | None = None,
    format: str = "tflite",
) -> dict[str, Any]:
    """Write ``<models_dir>/<name>.<format>`` and check it against the Keras model on the test set.

    Raises ``ValueError`` for a format other than ``EXPORT_FORMATS``, for a model that is not a Keras model,
    and when the export disagrees with the Keras model more than allowed (the file is then removed).
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}.")
    title = FORMAT_TITLES[format]
    # Where the file goes is checked first, before TensorFlow starts.
    destination = Path(output) if output else persistence.writable_models_dir(models_dir) / f"{name}.{format}"
    model = persistence.load_model(name, models_dir)
    if not isinstance(model, KerasClassifier):
        raise ValueError(f"Only the Keras models can be exported to {title}, not {name!r}.")
    started = time.perf_counter()
    WRITERS[format](model, destination)
    export_seconds = time.perf_counter() - started
    images, labels = load_mnist("test", data_dir)
    report = {
        "path": str(destination),
        "format": format,
        "size_bytes": destination.stat().st_size,
        "export_seconds": round(export_seconds, 2),
        **parity_report(model, RUNTIMES[format](destination), images, labels),
    }
    if not report["parity_ok"]:
        destination.unlink()
        raise ValueError(
            f"The {title} export of {name} agrees with the Keras model on {report['agreement']:.2%} of test "
            f"images (accuracy {report[f'{format}_accuracy']:.2%} against {report['keras_accuracy']:.2%}); "
            "not kept."
        )
    return report
