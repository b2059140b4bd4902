"""Bring any digit image into MNIST's form: 28x28, white ink on black, centred.

MNIST's own recipe is followed: the digit's bounding box is scaled so its
longer side is 20 pixels (keeping the aspect ratio) and placed in a 28x28
field so that its centre of mass is at the centre. Before that, real-world
input is brought close to what MNIST's scans looked like: the polarity is
detected, uneven lighting and paper texture are removed, specks are dropped
and strokes far thinner or thicker than MNIST's are redrawn at a typical
width. The command line, the dashboard and the tests all go through
:func:`preprocess`, so what a user sees as "what the model received" is
exactly what the model received.

This module is the pipeline; its steps live in three modules, run in this
order: :mod:`digitlab.imaging.decode` turns a path, bytes, PIL image or
array into a luminance array, :mod:`digitlab.imaging.clean` turns that into
white ink on a flat black background (or refuses it as holding no digit),
and :mod:`digitlab.imaging.normalise` brings the cropped digit into MNIST's
form.
"""

import os
from collections.abc import Iterable, Iterator

import numpy as np
from PIL import Image

from digitlab.errors import DigitlabError
from digitlab.imaging.clean import (
    clean_ink,
    drop_stray_marks,
    enlarge_small_scan,
    reject_scattered_ink,
    reject_soft_marks,
)
from digitlab.imaging.decode import source_to_gray
from digitlab.imaging.normalise import crop_to_ink, digit_to_mnist

# Saved drawings record this with their 28x28 input; raise it whenever the same image would give a different input.
PREPROCESS_VERSION = 3


def preprocess_array(gray: np.ndarray) -> np.ndarray:
    """MNIST-style ``uint8`` 28x28 input from a 2-D luminance array in [0, 1]."""
    digit = drop_stray_marks(clean_ink(gray, enlarge=enlarge_small_scan))
    reject_scattered_ink(digit)
    reject_soft_marks(digit)
    return digit_to_mnist(crop_to_ink(digit))


def preprocess(source: str | os.PathLike | bytes | Image.Image | np.ndarray) -> np.ndarray:
    """Turn a path, image bytes, PIL image or array into the 28x28 ``uint8`` models take.

    Arrays may be 2-D grayscale (``uint8`` 0-255, float 0-1, bool; other
    numbers 0-255, else by their own range), gray+alpha, RGB or RGBA, such
    as a drawing canvas returns.
    """
    return preprocess_array(source_to_gray(source))


def preprocessed(sources: Iterable[tuple[object, np.ndarray | bytes]]) -> Iterator[tuple[object, np.ndarray | None]]:
    """Each (tag, canvas or file) as the 28x28 input :func:`preprocess` makes of it, or None where it finds no digit."""
    for tag, source in sources:
        try:
            yield tag, preprocess(source)
        except DigitlabError:
            yield tag, None
