"""Turn any image source into a float luminance array in [0, 1], the first step of preprocessing.

A path, raw bytes, a PIL image or a NumPy array (grayscale, gray+alpha, RGB
or RGBA, of any number type) becomes one 2-D ``float32`` array: EXIF
rotation is applied, transparent parts take the colour opposite the ink, and
very large images are averaged down first, which bounds time and memory.
Damaged, oversized and non-image input is refused with :class:`ImageError`.
:func:`resize`, :func:`resize_longer_side` and :func:`limit_resolution`, which bring such an array to a
size, live here too, as cleaning and normalising both use them.
"""

import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitlab.errors import ImageError

MAX_FILE_BYTES = 50 * 1024 * 1024
# Images larger than this are refused before decoding. Today's phones save photos of 12 to 108 megapixels,
# which pass; a file declaring more is a decompression bomb or no photo anyone takes of a digit. Pillow's own
# guard refuses anything over twice its MAX_IMAGE_PIXELS (about 179 megapixels) even earlier.
MAX_PIXELS = 150_000_000
# At most this many pixels are decoded at full size (about 250 MB as RGBA). JPEG files decode scaled down by up to
# eight in each direction, so only PNG, TIFF and the other formats ever come near it: a 48-megapixel PNG passes,
# a 144-megapixel one-bit PNG of a few kilobytes does not.
MAX_DECODED_PIXELS = 60_000_000
# Only these decoders are used (JPEG includes the multi-picture files some phones write); none of them
# runs an external program, as EPS would.
READABLE_FORMATS = ("PNG", "JPEG", "BMP", "DIB", "GIF", "TIFF", "WEBP", "PPM")
# Larger images are averaged down to this longer side before any analysis, which bounds time and memory.
ANALYSIS_SIDE = 768
# The key of Image.info where load_image records how much a JPEG was scaled down while decoding.
DECODED_SCALE = "digitlab_decoded_scale"


def _sentence(label: str | None, problem: str) -> str:
    """``problem`` after the file's name, as the command line prints it, or on its own as a whole sentence."""
    return f"{label}: {problem}" if label else problem[:1].upper() + problem[1:]


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:,.0f} megapixels"


def load_image(source: str | os.PathLike | bytes | Image.Image) -> Image.Image:
    """Open an image from a path, raw bytes or a PIL image, with its EXIF rotation applied.

    Raises :class:`ImageError` with a whole sentence naming the problem for
    a missing path, a directory, an empty, oversized, truncated or non-image
    file; a path's message starts with the path. Images far larger than
    :data:`ANALYSIS_SIDE` are decoded at reduced size where the format allows
    it (JPEG), which keeps phone photos quick and small in memory.
    """
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, bytes | bytearray | memoryview):
        label, payload = None, bytes(source)
    else:
        label, payload = str(source), _read_file(Path(source))
    if not payload:
        raise ImageError(_sentence(label, "the file is empty."))
    if len(payload) > MAX_FILE_BYTES:
        raise ImageError(_sentence(label, f"the file is over the {MAX_FILE_BYTES:,}-byte limit."))
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged metadata it skips, which does not matter here, and about images over its
            # MAX_IMAGE_PIXELS, which _decode_scaled_down checks against this module's own limits instead.
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(payload), formats=READABLE_FORMATS)
            _decode_scaled_down(image, label)
            return ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(
            _sentence(label, f"the image has more pixels than the {_megapixels(MAX_PIXELS)} that can be read safely.")
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            _sentence(label, "the file is not a readable image (PNG, JPEG, BMP, GIF, TIFF, WebP or PPM).")
        ) from None
    except (OSError, ValueError, SyntaxError, struct.error, EOFError, IndexError, KeyError, TypeError) as error:
        # Pillow's decoders report damaged files through all of these.
        raise ImageError(_sentence(label, f"the image is damaged or truncated ({error}).")) from None
    except MemoryError:
        raise ImageError(_sentence(label, "the image needs more memory to decode than is available.")) from None


def _read_file(path: Path) -> bytes:
    """The bytes of an image file, or :class:`ImageError` naming the path when there are none to read."""
    if not path.exists():
        raise ImageError(f"{path}: no such file.")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image file.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImageError(f"{path}: the file is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit.")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImageError(f"{path}: cannot be read ({error.strerror or error}).") from None


def _decode_scaled_down(image: Image.Image, label: str | None) -> None:
    """Decode an opened image, a JPEG scaled down towards :data:`ANALYSIS_SIDE`, within the size limits.

    The limits are checked on the size the file declares and on the size
    that is actually decoded, before any pixel is decoded.
    """
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(_sentence(label, f"the image has no pixels ({width}x{height})."))
    if width * height > MAX_PIXELS:
        raise ImageError(
            _sentence(
                label,
                f"the image is {width}x{height} pixels ({_megapixels(width * height)}), more than the "
                f"{_megapixels(MAX_PIXELS)} that can be read safely.",
            )
        )
    image.draft(image.mode, (ANALYSIS_SIDE, ANALYSIS_SIDE))
    # What a decoded pixel spans in the file's own pixels, so that boxes found on it can be given in the latter.
    image.info[DECODED_SCALE] = width / image.size[0]
    decoded = image.size[0] * image.size[1]
    if decoded > MAX_DECODED_PIXELS:
        raise ImageError(
            _sentence(
                label,
                f"the image is {width}x{height} pixels ({_megapixels(decoded)}); a {image.format} file that large "
                f"cannot be read safely (up to {_megapixels(MAX_DECODED_PIXELS)}; JPEG photos up to "
                f"{_megapixels(MAX_PIXELS)}). Save it as a JPEG or at a smaller size.",
            )
        )
    image.load()


def to_grayscale(image: Image.Image) -> np.ndarray:
    """A float32 array in [0, 1] of the image's luminance, transparency flattened.

    Transparent pixels take the colour opposite to the ink, so a canvas export
    with white strokes on a transparent background reads like white on black.
    16-bit, 32-bit and floating-point images outside 0-1 and 0-255 are
    scaled by their own value range.
    """
    try:
        image = shrink_for_analysis(image)
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            return _scale_wide_values(np.asarray(image, dtype=np.float64))
        if image.mode in ("P", "PA"):
            image = image.convert("RGBA")
        if image.mode in ("RGBA", "LA", "RGBa", "La") or "transparency" in image.info:
            return _flatten_transparency(np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0)
        if image.mode not in ("1", "L", "RGB"):
            image = image.convert("RGB")
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except (OSError, ValueError) as error:
        raise ImageError(f"The image's colour mode {image.mode} cannot be read ({error}).") from None


def shrink_for_analysis(image: Image.Image) -> Image.Image:
    """Average a very large image down by a whole factor before it becomes a float array.

    A 60-megapixel PNG would otherwise take gigabytes as floats; the
    result stays at least :data:`ANALYSIS_SIDE` pixels on its longer side.
    """
    factor = max(image.size) // ANALYSIS_SIDE
    if factor < 2:
        return image
    if image.mode in ("1", "P", "PA"):
        image = image.convert("RGBA" if image.mode != "1" else "L")
    return image.reduce(factor)


def _scale_wide_values(values: np.ndarray) -> np.ndarray:
    """Map 16-bit, 32-bit or float pixel values onto [0, 1]: 0-1 and 0-255 as they are, others by their range."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ImageError("The image holds no finite pixel values.")
    low, high = float(finite.min()), float(finite.max())
    if low >= 0 and high <= 1:
        scale_low, scale_high = 0.0, 1.0
    elif low >= 0 and high <= 255:
        scale_low, scale_high = 0.0, 255.0
    elif high > low:
        scale_low, scale_high = low, high
    else:
        return np.zeros(values.shape, dtype=np.float32)
    if not np.isfinite(scale_high - scale_low):
        # Values spanning most of float64's range overflow when subtracted; a quarter of them does not.
        values, scale_low, scale_high = values / 4, scale_low / 4, scale_high / 4
    scaled = (np.nan_to_num(values, nan=scale_low) - scale_low) / (scale_high - scale_low)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _flatten_transparency(rgba: np.ndarray) -> np.ndarray:
    """Luminance of an RGBA float array with transparent parts set to the colour opposite the ink."""
    alpha = rgba[..., 3]
    luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if alpha.min() >= 1.0:
        return luminance
    visible = alpha > 0.5
    ink_is_bright = visible.any() and luminance[visible].mean() >= 0.5
    backdrop = 0.0 if ink_is_bright else 1.0
    return alpha * luminance + (1.0 - alpha) * backdrop


def limit_resolution(gray: np.ndarray, side: int = ANALYSIS_SIDE) -> np.ndarray:
    """Average the image down so its longer side is at most ``side`` pixels."""
    return gray if max(gray.shape) <= side else resize_longer_side(gray, side)


def resize_longer_side(gray: np.ndarray, side: int) -> np.ndarray:
    """``gray`` resized so its longer side is ``side`` pixels, keeping the aspect ratio."""
    height, width = gray.shape
    scale = side / max(height, width)
    return resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))))


def resize(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float image to ``size`` (width, height): area averaging down, bilinear up."""
    height, width = gray.shape
    shrinking = size[0] * size[1] < width * height
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(gray.astype(np.float32), "F").resize(size, resample), dtype=np.float32)


def source_to_gray(source: str | os.PathLike | bytes | Image.Image | np.ndarray) -> np.ndarray:
    """The float luminance in [0, 1] of any accepted source, transparency flattened."""
    if isinstance(source, np.ndarray):
        return array_to_gray(source)
    return to_grayscale(load_image(source))


def array_to_gray(array: np.ndarray) -> np.ndarray:
    """A float luminance in [0, 1] from a grayscale, gray+alpha, RGB or RGBA array."""
    if array.dtype.kind not in "biuf":
        raise ImageError(f"Expected an array of numbers, got dtype {array.dtype}.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[2] in (2, 3, 4):
        if array.size == 0:
            raise ImageError(f"Expected a non-empty image, got shape {array.shape}.")
        channels = _array_to_unit(array)
        if array.shape[2] == 2:
            channels = np.concatenate([np.repeat(channels[..., :1], 3, axis=2), channels[..., 1:]], axis=2)
        if channels.shape[2] == 4:
            return _flatten_transparency(channels)
        return channels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if array.ndim != 2:
        raise ImageError(f"Expected a grayscale, RGB or RGBA image, got shape {array.shape}.")
    return _array_to_unit(array)


def _array_to_unit(array: np.ndarray) -> np.ndarray:
    """Values in [0, 1]: bools as 0 and 1, ``uint8`` by 255, other numbers as :func:`_scale_wide_values` does."""
    if array.size == 0:
        raise ImageError(f"Expected a non-empty image, got shape {array.shape}.")
    if array.dtype.kind == "b":
        return array.astype(np.float32)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ImageError("The image holds values that are not finite numbers.")
    return _scale_wide_values(array.astype(np.float64))
