"""Hand-made image features for the SVM: second-moment deskewing, by vectorised affine warps of image stacks.

All images of a stack are warped together with numpy gathers (in chunks, to
bound memory) rather than in a Python loop over images.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from digitlab.data.mnist import IMAGE_SHAPE

_CHUNK = 8192


def warp_affine(images: np.ndarray, matrices: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Sample each image at ``sources[i] + matrices[i] @ (p - centre)`` for every output pixel p.

    ``images`` is ``(N, H, W)``; ``matrices`` is ``(N, 2, 2)`` in (row, column)
    order; ``sources`` is ``(N, 2)``, the input point that lands on the output
    centre. Bilinear interpolation; pixels from outside the input are 0.
    Returns float32 ``(N, H, W)``.
    """
    count, height, width = images.shape
    centre = np.array([(height - 1) / 2, (width - 1) / 2], dtype=np.float32)
    grid = np.stack(np.mgrid[:height, :width], axis=-1).reshape(-1, 2).astype(np.float32) - centre
    # A one-pixel zero border lets every bilinear neighbour be gathered without bounds checks.
    padded = np.pad(images.astype(np.float32), ((0, 0), (1, 1), (1, 1)))
    flat = padded.reshape(count, -1)
    output = np.empty((count, height * width), dtype=np.float32)
    for start in range(0, count, _CHUNK):
        stop = min(start + _CHUNK, count)
        points = np.einsum("nij,pj->npi", matrices[start:stop], grid) + sources[start:stop, None, :]
        rows = np.clip(points[..., 0] + 1, 0, height + 0.999)
        columns = np.clip(points[..., 1] + 1, 0, width + 0.999)
        top, left = np.floor(rows), np.floor(columns)
        row_weight, column_weight = rows - top, columns - left
        top, left = top.astype(np.intp), left.astype(np.intp)
        chunk = flat[start:stop]

        def at(row_index, column_index, chunk=chunk):
            return np.take_along_axis(chunk, row_index * (width + 2) + column_index, axis=1)

        output[start:stop] = (
            at(top, left) * (1 - row_weight) * (1 - column_weight)
            + at(top, left + 1) * (1 - row_weight) * column_weight
            + at(top + 1, left) * row_weight * (1 - column_weight)
            + at(top + 1, left + 1) * row_weight * column_weight
        )
    return output.reshape(count, height, width)


def deskew(images: np.ndarray) -> np.ndarray:
    """Shear each image so its principal axis is vertical and centre its mass.

    The shear is the image's row-column covariance over its row variance, the
    second-moment deskewing that took SVMs on MNIST past 99 %. Returns float32 in [0, 1].
    """
    pixels = np.asarray(images, dtype=np.float32) / 255.0
    rows, columns = np.mgrid[: IMAGE_SHAPE[0], : IMAGE_SHAPE[1]].astype(np.float32)
    mass = pixels.sum(axis=(1, 2)) + 1e-6
    mean_row = (pixels * rows).sum(axis=(1, 2)) / mass
    mean_column = (pixels * columns).sum(axis=(1, 2)) / mass
    row_offsets = rows - mean_row[:, None, None]
    column_offsets = columns - mean_column[:, None, None]
    row_variance = (pixels * row_offsets**2).sum(axis=(1, 2)) / mass
    covariance = (pixels * row_offsets * column_offsets).sum(axis=(1, 2)) / mass
    skew = covariance / np.maximum(row_variance, 1e-6)
    matrices = np.zeros((len(pixels), 2, 2), dtype=np.float32)
    matrices[:, 0, 0] = 1.0
    matrices[:, 1, 0] = skew
    matrices[:, 1, 1] = 1.0
    sources = np.stack([mean_row, mean_column], axis=1)
    return warp_affine(pixels, matrices, sources)


class Deskew(TransformerMixin, BaseEstimator):
    """Pipeline step: flattened ``uint8`` images in, flattened deskewed float32 images out."""

    def fit(self, images, labels=None):
        self.n_features_in_ = np.asarray(images).shape[1]
        return self

    def transform(self, images):
        flat = np.asarray(images)
        return deskew(flat.reshape(-1, *IMAGE_SHAPE)).reshape(len(flat), -1)


class GlobalScaler(TransformerMixin, BaseEstimator):
    """Divide every feature by one shared standard deviation.

    Unlike per-feature standardisation this keeps the relative variance of PCA
    components, which an RBF kernel's distances depend on.
    """

    def fit(self, features, labels=None):
        features = np.asarray(features)
        self.n_features_in_ = features.shape[1]
        self.scale_ = float(features.std()) or 1.0
        return self

    def transform(self, features):
        return np.asarray(features, dtype=np.float64) / self.scale_
