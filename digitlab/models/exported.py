"""Exported models (TensorFlow Lite, ONNX) run behind digitlab's interface: read, run and copied, never trained."""

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from digitlab.data.mnist import IMAGE_SHAPE
from digitlab.models.base import normalised_rows
from digitlab.models.neural import batched_probabilities, network_input

EXPORT_FORMATS = ("tflite", "onnx")
# Each format's name in sentences and its shorter label in tables.
FORMAT_TITLES = {"tflite": "TensorFlow Lite", "onnx": "ONNX"}
FORMAT_LABELS = {"tflite": "TFLite", "onnx": "ONNX"}


class ExportedClassifier(ABC):
    """What every exported file shares: it is read and run, never trained (a :class:`Predictor`)."""

    format: ClassVar[str]

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @abstractmethod
    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of shape ``(N, 10)``, rows summing to 1."""

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.predict_proba(images).argmax(axis=1)


class TFLiteClassifier(ExportedClassifier):
    """Runs an exported ``.tflite`` file with the TensorFlow Lite interpreter, behind digitlab's interface."""

    format = "tflite"

    def __init__(self, path: str | os.PathLike):
        # LiteRT is the maintained successor of tf.lite.Interpreter, which TensorFlow has deprecated.
        from ai_edge_litert.interpreter import Interpreter

        super().__init__(path)
        self.interpreter_ = Interpreter(model_path=str(self.path), num_threads=os.cpu_count())
        self._input = self.interpreter_.get_input_details()[0]["index"]
        self._output = self.interpreter_.get_output_details()[0]["index"]
        self._batch = 0

    def predict_proba(self, images):
        batch = network_input(images)
        if len(batch) != self._batch:
            self.interpreter_.resize_tensor_input(self._input, [len(batch), *IMAGE_SHAPE, 1])
            self.interpreter_.allocate_tensors()
            self._batch = len(batch)
        self.interpreter_.set_tensor(self._input, batch)
        self.interpreter_.invoke()
        return normalised_rows(self.interpreter_.get_tensor(self._output))


class ONNXClassifier(ExportedClassifier):
    """Runs an exported ``.onnx`` file with ONNX Runtime on the CPU, behind digitlab's interface."""

    format = "onnx"

    def __init__(self, path: str | os.PathLike):
        import onnxruntime

        super().__init__(path)
        options = onnxruntime.SessionOptions()
        # Idle worker threads that spin keep a core busy between calls; on a shared machine they lose it to other
        # processes and single-image calls then wait for them (p95 4 ms against 0.3 ms for the CNN on 2 busy cores).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session_ = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._input = self.session_.get_inputs()[0].name

    def predict_proba(self, images):
        # Batches as large as the Keras model's keep the convolutions' intermediate tensors to a few hundred MB.
        return batched_probabilities(
            lambda batch: self.session_.run(None, {self._input: batch})[0], network_input(images)
        )


RUNTIMES: dict[str, type[ExportedClassifier]] = {"tflite": TFLiteClassifier, "onnx": ONNXClassifier}
