"""digitlab: handwritten-digit recognition with an SVM, an MLP and a CNN trained on MNIST."""

from digitlab.persistence import load_model

__all__ = ["load_model"]
