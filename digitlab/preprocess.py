"""Bring any digit image into MNIST's form: 28x28, white ink on black, centred.

MNIST's own recipe is followed: the digit's bounding box is scaled so its
longer side is 20 pixels (keeping the aspect ratio) and placed in a 28x28
field so that its centre of mass is at the centre. The command line, the
dashboard and the tests all go through :func:`preprocess`, so what a user
sees as "what the model received" is exactly what the model received.
"""

import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from digitlab.errors import ImageError, NoDigitFoundError

MNIST_SIZE = 28
DIGIT_BOX = 20
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 40_000_000
# A pixel counts as ink once it is this far from the background towards the ink.
INK_THRESHOLD = 0.25
# Fewer ink pixels than this fraction of the image (and fewer than MIN_INK_PIXELS) means no digit.
MIN_INK_FRACTION = 0.0005
MIN_INK_PIXELS = 4
MIN_CONTRAST = 0.15


def load_image(source: str | os.PathLike | bytes | Image.Image) -> Image.Image:
    """Open an image from a path, raw bytes or a PIL image, with its EXIF rotation applied.

    Raises :class:`ImageError` with a sentence naming the problem for a
    missing path, a directory, an empty, oversized, truncated or non-image file.
    """
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, bytes):
        label, payload = "the uploaded data", source
    else:
        path = Path(source)
        label = str(path)
        if not path.exists():
            raise ImageError(f"{label}: no such file.")
        if path.is_dir():
            raise ImageError(f"{label}: is a directory, not an image file.")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{label}: file is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit.")
        payload = path.read_bytes()
    if not payload:
        raise ImageError(f"{label}: file is empty.")
    if len(payload) > MAX_FILE_BYTES:
        raise ImageError(f"{label}: data is over the {MAX_FILE_BYTES:,}-byte limit.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(payload))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"{label}: image is {width}x{height} pixels, over the {MAX_PIXELS:,}-pixel limit.")
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{label}: image has too many pixels (over the {MAX_PIXELS:,}-pixel limit).") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not a readable image (PNG, JPEG, BMP, GIF or TIFF).") from None
    except (OSError, ValueError, SyntaxError, struct.error) as error:
        raise ImageError(f"{label}: the image is damaged or truncated ({error}).") from None
    return ImageOps.exif_transpose(image)


def to_grayscale(image: Image.Image) -> np.ndarray:
    """A float32 array in [0, 1] of the image's luminance, transparency flattened.

    Transparent pixels take the colour opposite to the ink, so a canvas export
    with white strokes on a transparent background reads like white on black.
    """
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if alpha.min() < 1.0:
            visible = alpha > 0.5
            ink_is_bright = visible.any() and luminance[visible].mean() >= 0.5
            backdrop = 0.0 if ink_is_bright else 1.0
            return alpha * luminance + (1.0 - alpha) * backdrop
        return luminance
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def to_white_on_black(gray: np.ndarray) -> np.ndarray:
    """Invert dark-on-light images, judging the background by the image's border."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 1.0 - gray if np.median(border) > 0.5 else gray


def stretch_contrast(gray: np.ndarray) -> np.ndarray:
    """Map the background level to 0 and the brightest ink to 1."""
    background = float(np.median(gray))
    peak = float(gray.max())
    if peak - background < MIN_CONTRAST:
        raise NoDigitFoundError("No digit found: the image is blank or a single colour.")
    return np.clip((gray - background) / (peak - background), 0.0, 1.0)


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Pixels bright enough to be part of a stroke."""
    return gray > INK_THRESHOLD


def crop_to_ink(gray: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding all ink; raises if there is too little ink."""
    mask = ink_mask(gray)
    needed = max(MIN_INK_PIXELS, MIN_INK_FRACTION * gray.size)
    if mask.sum() < needed:
        raise NoDigitFoundError("No digit found: draw or upload a digit with more ink.")
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    return gray[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]


def fit_into_box(gray: np.ndarray, box: int = DIGIT_BOX) -> np.ndarray:
    """Scale so the longer side is ``box`` pixels, keeping the aspect ratio."""
    height, width = gray.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(np.round(gray * 255).astype(np.uint8))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.asarray(image.resize(size, resample), dtype=np.float32) / 255.0


def centre_by_mass(digit: np.ndarray, size: int = MNIST_SIZE) -> np.ndarray:
    """Place ``digit`` in a ``size`` x ``size`` field with its centre of mass at ``size / 2``."""
    height, width = digit.shape
    canvas = np.zeros((size, size), dtype=np.float32)
    top, left = (size - height) // 2, (size - width) // 2
    canvas[top : top + height, left : left + width] = digit
    centre_row, centre_column = ndimage.center_of_mass(canvas)
    # MNIST's digits have their centre of mass at pixel (14, 14), not at the geometric 13.5.
    shift = (size / 2 - centre_row, size / 2 - centre_column)
    return ndimage.shift(canvas, shift, order=1, mode="constant", cval=0.0)


def preprocess_array(gray: np.ndarray) -> np.ndarray:
    """MNIST-style ``uint8`` 28x28 input from a 2-D luminance array in [0, 1]."""
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise ImageError(f"Expected a 2-D image, got an array of shape {gray.shape}.")
    if not np.isfinite(gray).all():
        raise ImageError("The image holds values that are not finite numbers.")
    digit = crop_to_ink(stretch_contrast(to_white_on_black(gray)))
    centred = centre_by_mass(fit_into_box(digit))
    return np.clip(np.round(centred * 255), 0, 255).astype(np.uint8)


def preprocess(source: str | os.PathLike | bytes | Image.Image | np.ndarray) -> np.ndarray:
    """Turn a path, image bytes, PIL image or array into the 28x28 ``uint8`` models take.

    Arrays may be 2-D grayscale (``uint8`` 0-255 or float 0-1) or 3-D RGB/RGBA
    ``uint8`` such as a drawing canvas returns.
    """
    if isinstance(source, np.ndarray):
        return preprocess_array(_array_to_gray(source))
    return preprocess_array(to_grayscale(load_image(source)))


def _array_to_gray(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] in (3, 4):
        mode = "RGBA" if array.shape[2] == 4 else "RGB"
        return to_grayscale(Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), mode))
    if array.ndim != 2:
        raise ImageError(f"Expected a grayscale, RGB or RGBA image, got shape {array.shape}.")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return np.asarray(array, dtype=np.float32)
