"""Real handwriting beside MNIST that needs no download: scikit-learn's copy of the UCI optical-recognition digits.

The 1,797 digits were written on forms by other people than MNIST's writers
and reduced to 8x8 blocks of 17 gray levels (the ink counted in 4x4 cells of a
32x32 bitmap of the digit stretched to fill its box). Too coarse to train the
lab's models on, they are the one source of real handwriting that the
validation (:mod:`digitlab.checks.realworld`) can reach offline.
"""

import numpy as np

# The gray levels run from 0 (no ink) to this many ink pixels of a 4x4 cell.
FULL_CELL = 16


def uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """The digits as ``uint8`` 8x8 images, white ink on black (0-255), and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images / FULL_CELL * 255).astype(np.uint8)
    return images, digits.target.astype(np.int64)
