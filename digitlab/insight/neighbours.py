"""Nearest training images in a learned embedding, to show what a test image resembles.

The embedding is a Keras network's penultimate layer: the features its last
layer weighs to pick a digit, so images close there are images the network
finds alike. For every query image the nearest training images are found
separately within each class, so the explorer can show look-alikes of the
true digit beside look-alikes of whatever digit a model read.
"""

import numpy as np

from digitlab.data.mnist import CLASSES
from digitlab.models.base import as_image_batch
from digitlab.models.neural import PREDICTION_BATCH

# Query images compared with every training image at once; bounds the distance matrix to about 100 MB.
QUERY_CHUNK = 400


def penultimate_embedding(network, images: np.ndarray) -> np.ndarray:
    """The input of ``network``'s last layer for every image, as float32 of shape ``(N, features)``.

    ``network`` is a Keras ``Sequential`` model such as ``KerasClassifier.network_``; its layers run
    in inference mode, so dropout and augmentation do nothing.
    """
    import tensorflow as tf

    hidden_layers = network.layers[:-1]
    if not hidden_layers:
        raise ValueError("The network needs at least two layers to have a penultimate one.")

    @tf.function(reduce_retracing=True)
    def embed(batch):
        for layer in hidden_layers:
            batch = layer(batch, training=False)
        return batch

    batch = as_image_batch(images).astype(np.float32)[..., None]
    parts = [embed(batch[start : start + PREDICTION_BATCH]).numpy() for start in range(0, len(batch), PREDICTION_BATCH)]
    return np.concatenate(parts).reshape(len(batch), -1).astype(np.float32)


def nearest_by_class(
    queries: np.ndarray, reference: np.ndarray, reference_labels: np.ndarray, per_class: int = 5
) -> np.ndarray:
    """Indices into ``reference`` of each query's ``per_class`` nearest neighbours of every class.

    Returns an integer array of shape ``(len(queries), 10, per_class)``, nearest first, by
    Euclidean distance. Every class must have at least ``per_class`` reference rows.
    """
    queries = np.asarray(queries, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    reference_labels = np.asarray(reference_labels)
    if queries.ndim != 2 or reference.ndim != 2 or queries.shape[1] != reference.shape[1]:
        raise ValueError(f"Queries {queries.shape} and reference {reference.shape} must be 2-D with equal widths.")
    if len(reference_labels) != len(reference):
        raise ValueError(f"{len(reference_labels)} labels for {len(reference)} reference rows.")
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, not {per_class}.")
    members = [np.flatnonzero(reference_labels == digit) for digit in range(CLASSES)]
    smallest = min(len(indices) for indices in members)
    if smallest < per_class:
        raise ValueError(f"Every class needs {per_class} reference images, but one has only {smallest}.")
    result = np.empty((len(queries), CLASSES, per_class), dtype=np.int64)
    squared_norms = (reference**2).sum(axis=1)
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = queries[start : start + QUERY_CHUNK]
        # The query's own squared norm is the same for every candidate, so it is left out of the ranking.
        distances = squared_norms[None, :] - 2 * chunk @ reference.T
        for digit, indices in enumerate(members):
            within = distances[:, indices]
            nearest = np.argpartition(within, per_class - 1, axis=1)[:, :per_class]
            order = np.take_along_axis(within, nearest, axis=1).argsort(axis=1, kind="stable")
            result[start : start + len(chunk), digit] = indices[np.take_along_axis(nearest, order, axis=1)]
    return result
