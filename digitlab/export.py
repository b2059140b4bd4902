"""Export the Keras models to TensorFlow Lite for mobile and edge use, with a parity check."""

import os
from pathlib import Path
from typing import Any

import numpy as np

from digitlab import persistence
from digitlab.atomic import write_atomically
from digitlab.models import IMAGE_SHAPE, DigitClassifier, KerasClassifier, as_image_batch

EXPORT_FORMATS = ("tflite",)
# The exported model must agree with the Keras model on this share of test images...
MIN_AGREEMENT = 0.999
# ...and lose at most this much accuracy (a fraction, i.e. 0.05 points).
MAX_ACCURACY_LOSS = 0.0005


class TFLiteClassifier(DigitClassifier):
    """Runs an exported ``.tflite`` file with the TensorFlow Lite interpreter, behind digitlab's interface."""

    name = "tflite"
    title = "TensorFlow Lite export"
    artifact_name = "model.tflite"

    def __init__(self, path: str | os.PathLike):
        # LiteRT is the maintained successor of tf.lite.Interpreter, which TensorFlow has deprecated.
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.interpreter_ = Interpreter(model_path=str(self.path), num_threads=os.cpu_count())
        self._input = self.interpreter_.get_input_details()[0]["index"]
        self._output = self.interpreter_.get_output_details()[0]["index"]
        self._batch = 0

    def fit(self, images, labels, *, progress=None):
        raise NotImplementedError("A TensorFlow Lite export is not trained; export a trained Keras model instead.")

    def predict_proba(self, images):
        batch = as_image_batch(images).astype(np.float32)[..., None]
        if len(batch) != self._batch:
            self.interpreter_.resize_tensor_input(self._input, [len(batch), *IMAGE_SHAPE, 1])
            self.interpreter_.allocate_tensors()
            self._batch = len(batch)
        self.interpreter_.set_tensor(self._input, batch)
        self.interpreter_.invoke()
        probabilities = self.interpreter_.get_tensor(self._output).astype(np.float64)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def get_params(self):
        return {"path": str(self.path)}

    def complexity(self):
        return {"bytes": self.path.stat().st_size}

    def save(self, path):
        Path(path).write_bytes(self.path.read_bytes())

    @classmethod
    def load(cls, path):
        return cls(path)


def convert_to_tflite(model: KerasClassifier) -> bytes:
    """The model's inference graph as a TensorFlow Lite flatbuffer (float32, no quantisation)."""
    import tensorflow as tf

    function = model._forward.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model.network_)
    return converter.convert()


def export_model(
    name: str, models_dir=None, data_dir=None, *, output: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Write ``<models_dir>/<name>.tflite`` and check it against the Keras model on the test set.

    Raises ``ValueError`` when the export disagrees with the Keras model more than allowed.
    """
    from digitlab.data import load_mnist

    model = persistence.load_model(name, models_dir)
    if not isinstance(model, KerasClassifier):
        raise ValueError(f"Only the Keras models can be exported to TensorFlow Lite, not {name!r}.")
    destination = Path(output) if output else persistence.resolve_models_dir(models_dir) / f"{name}.tflite"
    write_atomically(destination, convert_to_tflite(model))
    images, labels = load_mnist("test", data_dir)
    keras_predictions = model.predict(images)
    lite_predictions = TFLiteClassifier(destination).predict(images)
    report = {
        "path": str(destination),
        "size_bytes": destination.stat().st_size,
        "agreement": float((keras_predictions == lite_predictions).mean()),
        "keras_accuracy": float((keras_predictions == labels).mean()),
        "tflite_accuracy": float((lite_predictions == labels).mean()),
    }
    report["parity_ok"] = (
        report["agreement"] >= MIN_AGREEMENT
        and report["keras_accuracy"] - report["tflite_accuracy"] <= MAX_ACCURACY_LOSS
    )
    if not report["parity_ok"]:
        destination.unlink()
        raise ValueError(
            f"The TensorFlow Lite export of {name} agrees with the Keras model on {report['agreement']:.2%} of test "
            f"images (accuracy {report['tflite_accuracy']:.2%} against {report['keras_accuracy']:.2%}); not kept."
        )
    return report
