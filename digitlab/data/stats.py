"""Descriptive statistics of MNIST images and labels: class balance, mean digits and pixel intensities."""

from collections.abc import Mapping
from typing import Any

import numpy as np

from digitlab.data.mnist import CLASSES, IMAGE_SHAPE

PIXEL_LEVELS = 256


def class_counts(labels: np.ndarray) -> np.ndarray:
    """How many images each digit 0-9 has."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= CLASSES):
        raise ValueError(f"Labels must be digits 0-{CLASSES - 1}.")
    return np.bincount(labels.astype(np.int64), minlength=CLASSES)


def class_distribution_rows(splits: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """One row per split and digit: the digit's image count and its share of the split."""
    rows = []
    for split, labels in splits.items():
        counts = class_counts(labels)
        total = max(1, int(counts.sum()))
        rows.extend(
            {"split": split, "digit": digit, "count": int(count), "share": float(count) / total}
            for digit, count in enumerate(counts)
        )
    return rows


def mean_images(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The average image of each digit, float32 of shape ``(10, 28, 28)`` in 0-255; zeros for an absent digit."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.shape[1:] != IMAGE_SHAPE or len(images) != len(labels):
        raise ValueError(
            f"Expected N images of {IMAGE_SHAPE} and as many labels, got {images.shape} and {labels.shape}."
        )
    means = np.zeros((CLASSES, *IMAGE_SHAPE), dtype=np.float32)
    for digit in range(CLASSES):
        selected = images[labels == digit]
        if len(selected):
            means[digit] = selected.sum(axis=0, dtype=np.float64) / len(selected)
    return means


def intensity_histogram(images: np.ndarray, bins: int = 32, include_background: bool = True):
    """Pixel counts in ``bins`` equal ranges of 0-255, and the ``bins + 1`` range edges.

    With ``include_background`` false, pure black pixels (value 0, about
    four in five of MNIST's pixels) are left out so the ink's levels show.
    """
    if not 1 <= bins <= PIXEL_LEVELS or PIXEL_LEVELS % bins:
        raise ValueError(f"bins must divide {PIXEL_LEVELS}, not {bins}.")
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"Expected uint8 pixels, got {images.dtype}.")
    levels = np.bincount(images.ravel(), minlength=PIXEL_LEVELS)
    if not include_background:
        levels[0] = 0
    counts = levels.reshape(bins, PIXEL_LEVELS // bins).sum(axis=1)
    edges = np.arange(0, PIXEL_LEVELS + 1, PIXEL_LEVELS // bins)
    return counts, edges


def samples_per_digit(labels: np.ndarray, per_digit: int, seed: int) -> list[np.ndarray]:
    """For each digit, up to ``per_digit`` random indices of images with that label, sorted."""
    if per_digit < 0:
        raise ValueError(f"per_digit must not be negative, not {per_digit}.")
    labels = np.asarray(labels)
    generator = np.random.default_rng(seed)
    chosen = []
    for digit in range(CLASSES):
        candidates = np.flatnonzero(labels == digit)
        picked = generator.choice(candidates, size=min(per_digit, len(candidates)), replace=False)
        chosen.append(np.sort(picked))
    return chosen


def ink_statistics(images: np.ndarray) -> dict[str, float]:
    """Mean pixel value and the share of pixels that are not pure black."""
    images = np.asarray(images)
    if images.size == 0:
        raise ValueError("Cannot describe an empty set of images.")
    return {"mean_intensity": float(images.mean()), "ink_share": float(np.count_nonzero(images) / images.size)}
