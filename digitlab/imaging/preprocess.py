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
"""

import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from digitlab.data.mnist import IMAGE_SIDE
from digitlab.errors import ImageError, NoDigitFoundError

DIGIT_BOX = 20
# Saved drawings record this with their 28x28 input; raise it whenever the same image would give a different input.
PREPROCESS_VERSION = 2
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 40_000_000
# Only these decoders are used (JPEG includes the multi-picture files some phones write); none of them
# runs an external program, as EPS would.
READABLE_FORMATS = ("PNG", "JPEG", "BMP", "DIB", "GIF", "TIFF", "WEBP", "PPM")
# Larger images are averaged down to this longer side before any analysis, which bounds time and memory.
ANALYSIS_SIDE = 768
# A pixel counts as ink once it is this far from the background towards the ink.
INK_THRESHOLD = 0.25
# Fewer ink pixels than this fraction of the image (and fewer than MIN_INK_PIXELS) means no digit.
MIN_INK_FRACTION = 0.0005
MIN_INK_PIXELS = 4
MIN_CONTRAST = 0.15
# Neighbouring pixels along a stroke are alike; below this correlation an image is noise, not a digit.
# Digits of every validation source score above 0.3, noise of 28x28 pixels or more below 0.15.
MIN_NEIGHBOUR_CORRELATION = 0.25
# Uneven lighting is only looked for in images at least this large; smaller ones are crops or scans.
MIN_SIDE_FOR_LIGHTING = 64
# The background is estimated on a copy with at most this longer side.
BACKGROUND_SIDE = 160
# Regions standing out from the lighting envelope with a half-thickness above this share of the
# image are lighting along the image's edge; no pen stroke is that thick.
MAX_STROKE_SHARE = 1 / 16
# The ink's peak level is read from this share of the brightest pixels (after polarity is settled).
PEAK_SHARE = 0.001
# Pixel noise above this share of the image's contrast is blurred away before anything else.
NOISE_SHARE = 0.04
# A background is uniform (a drawing or a clean scan) when this share of pixels is within UNIFORM_TOLERANCE of it.
UNIFORM_SHARE = 0.4
UNIFORM_TOLERANCE = 3 / 255
# Remaining background fluctuation below this many robust standard deviations is paper texture, not ink.
TEXTURE_DEVIATIONS = 4.0
MIN_TEXTURE_FLOOR = 0.08
# Components with less than this share of the largest component's ink are specks.
SPECK_SHARE = 0.02
# A component with less than this share of the largest one's ink belongs to the digit only when it
# lies within this fraction of the digit's size from it.
STRAY_SHARE = 0.25
STRAY_GAP = 0.3
# Below this share of all ink in its largest component, an image holds scattered marks, not a digit.
MIN_MAIN_SHARE = 0.35
# Ink filling less than SOFT_FILL of its box, with less than SOFT_SOLID of it above SOLID_LEVEL, is the faint
# shading that smooth or blocky noise leaves after cleaning, not a digit's strokes (reject_soft_marks).
SOFT_FILL = 0.15
SOFT_SOLID = 0.4
SOLID_LEVEL = 0.75
# Strokes are measured and redrawn with the digit's longer side at this many pixels (four times MNIST's box).
WORK_BOX = 4 * DIGIT_BOX
# MNIST's stroke widths at WORK_BOX: the 5th and 95th percentiles and the median, over 2000 training digits.
TYPICAL_STROKE_RANGE = (6.5, 16.0)
TYPICAL_STROKE_WIDTH = 10.0
# Thick strokes are pared down to this width: thicker than the median, as paring leaves blunt ends.
THICK_STROKE_TARGET = 12.0
# No part of a stroke ends up thinner than MNIST's 5th-percentile width, so a stroke is never cut where it thins.
MIN_STROKE_WIDTH = TYPICAL_STROKE_RANGE[0]
# Shrinking to WORK_BOX must leave every stroke at least this many pixels wide, or thin lines break into pieces.
MIN_SHRUNK_WIDTH = 2.0
# Ink whose largest piece holds less than this share is porous (chalk, worn pens) when closing small gaps joins
# it; gaps are closed with windows up to POROUS_GAP_SHARE of the image's longer side.
POROUS_MAIN_SHARE = 0.5
POROUS_GAP_SHARE = 0.03


def load_image(source: str | os.PathLike | bytes | Image.Image) -> Image.Image:
    """Open an image from a path, raw bytes or a PIL image, with its EXIF rotation applied.

    Raises :class:`ImageError` with a sentence naming the problem for a
    missing path, a directory, an empty, oversized, truncated or non-image file.
    Images far larger than :data:`ANALYSIS_SIDE` are decoded at reduced size
    where the format allows it (JPEG), which keeps phone photos quick.
    """
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, bytes | bytearray | memoryview):
        label, payload = "the uploaded data", bytes(source)
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
        try:
            payload = path.read_bytes()
        except OSError as error:
            raise ImageError(f"{label}: cannot be read ({error.strerror or error}).") from None
    if not payload:
        raise ImageError(f"{label}: file is empty.")
    if len(payload) > MAX_FILE_BYTES:
        raise ImageError(f"{label}: data is over the {MAX_FILE_BYTES:,}-byte limit.")
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged metadata it skips; the image itself is what matters here.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(payload), formats=READABLE_FORMATS)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"{label}: image is {width}x{height} pixels, over the {MAX_PIXELS:,}-pixel limit.")
            if width < 1 or height < 1:
                raise ImageError(f"{label}: image has no pixels ({width}x{height}).")
            image.draft(image.mode, (ANALYSIS_SIDE, ANALYSIS_SIDE))
            image.load()
            return ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{label}: image has too many pixels (over the {MAX_PIXELS:,}-pixel limit).") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not a readable image (PNG, JPEG, BMP, GIF, TIFF, WebP or PPM).") from None
    except (OSError, ValueError, SyntaxError, struct.error, EOFError, IndexError, KeyError, TypeError) as error:
        # Pillow's decoders report damaged files through all of these.
        raise ImageError(f"{label}: the image is damaged or truncated ({error}).") from None
    except MemoryError:
        raise ImageError(f"{label}: the image needs more memory to decode than is available.") from None


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

    A 40-megapixel upload would otherwise take gigabytes as floats; the
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
    height, width = gray.shape
    scale = side / max(height, width)
    if scale >= 1:
        return gray
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return resize(gray, size)


def resize(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float image to ``size`` (width, height): area averaging down, bilinear up."""
    height, width = gray.shape
    shrinking = size[0] * size[1] < width * height
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(gray.astype(np.float32), "F").resize(size, resample), dtype=np.float32)


def reject_noise(gray: np.ndarray) -> None:
    """Raise :class:`NoDigitFoundError` when neighbouring pixels are unrelated, as in pure noise.

    Along a stroke, neighbouring pixels are alike even in a 16-pixel
    binarised scan, so at least one of the four directions (across, down and
    the two diagonals) shows a clear correlation; random pixels show none,
    and a model would otherwise read a digit into them.
    """
    if min(gray.shape) < 3:
        return
    centred = gray - gray.mean()
    variance = float((centred**2).mean())
    if variance < 1e-8:
        return
    neighbours = (
        (centred[:, 1:], centred[:, :-1]),
        (centred[1:], centred[:-1]),
        (centred[1:, 1:], centred[:-1, :-1]),
        (centred[1:, :-1], centred[:-1, 1:]),
    )
    correlation = max(float((first * second).mean()) for first, second in neighbours) / variance
    if correlation < MIN_NEIGHBOUR_CORRELATION:
        raise NoDigitFoundError("No digit found: the image looks like random noise, not a drawn or written digit.")


def smooth_noise(gray: np.ndarray) -> np.ndarray:
    """Blur away pixel noise (sensor grain, paper texture) when it is strong against the ink's contrast.

    The noise is measured from the differences between neighbouring pixels,
    which are zero on a clean background and follow the noise on a noisy one.
    """
    if min(gray.shape) < 3:
        return gray
    noise = 1.4826 * float(np.median(np.abs(np.diff(gray, axis=1)))) / np.sqrt(2)
    low, high = np.percentile(gray, [0.5, 99.5])
    if noise <= NOISE_SHARE * max(float(high - low), 1e-6):
        return gray
    return ndimage.gaussian_filter(gray, 1.0 if min(gray.shape) >= MIN_SIDE_FOR_LIGHTING else 0.6)


def background_is_uniform(gray: np.ndarray) -> bool:
    """Whether most of the image sits at one level, as a drawing or a clean scan does."""
    level = np.median(gray)
    return bool((np.abs(gray - level) <= UNIFORM_TOLERANCE).mean() >= UNIFORM_SHARE)


def has_lighting(gray: np.ndarray) -> bool:
    """Whether the image may have uneven lighting: large enough to be a photo, and without a uniform background."""
    return min(gray.shape) >= MIN_SIDE_FOR_LIGHTING and not background_is_uniform(gray)


def split_levels(gray: np.ndarray) -> np.ndarray:
    """Otsu's split of the pixels into a darker and a brighter class; True marks the brighter."""
    low, high = float(gray.min()), float(gray.max())
    # Levels closer than this are one level (and far below any contrast a digit needs).
    if high - low < 1e-3:
        return np.zeros(gray.shape, dtype=bool)
    histogram, edges = np.histogram(gray.astype(np.float64), bins=64, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(histogram)[:-1]
    weight_high = gray.size - weight_low
    sum_low = np.cumsum(histogram * centres)[:-1]
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (float((histogram * centres).sum()) - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return gray > edges[1 + int(np.argmax(between))]


def background_class(gray: np.ndarray) -> np.ndarray:
    """The pixels of the background, for an image whose background is one level (a drawing or a scan).

    Of Otsu's two classes, the background is the one that holds the majority
    in at least two of: the whole image, its outermost pixels, its four
    corners. A thick digit may fill most of a tight crop, and a 0 stretched
    to fill its box touches every side, but not both at once.
    """
    bright = split_levels(gray)
    corner = max(1, min(gray.shape) // 8)
    edge = np.concatenate([bright[0], bright[-1], bright[:, 0], bright[:, -1]])
    corners = np.concatenate(
        [
            block.ravel()
            for block in (
                bright[:corner, :corner],
                bright[:corner, -corner:],
                bright[-corner:, :corner],
                bright[-corner:, -corner:],
            )
        ]
    )
    votes = sum(part.mean() > 0.5 for part in (bright, edge, corners))
    return bright if votes >= 2 else ~bright


def background_level(gray: np.ndarray) -> float:
    """The median of the background class: the single level of a drawing's or a scan's background."""
    return float(np.median(gray[background_class(gray)]))


def lighting_envelope(small: np.ndarray, dark_ink: bool) -> np.ndarray:
    """The paper's level under the ink: a grey closing for dark ink, an opening for bright ink.

    The window, a sixth of the image wide, is wider than any pen stroke, so
    strokes vanish, while a shadow's edge, being a large step, passes
    through unchanged.
    """
    window = max(3, round(max(small.shape) / 6))
    morphology = ndimage.grey_closing if dark_ink else ndimage.grey_opening
    return morphology(small, size=(window, window), mode="nearest")


def ink_marks(standing_out: np.ndarray) -> np.ndarray:
    """Pixels that stand out from the lighting envelope as strongly as ink, in stroke-sized shapes.

    Near the image's edge the envelope cannot tell a darkening corner from a
    stroke, so it stands out there too; such regions are broad, and a region
    whose half-thickness exceeds :data:`MAX_STROKE_SHARE` of the image is
    lighting, not ink. The marks are widened by two pixels to cover the
    strokes' soft edges.
    """
    threshold = max(0.5 * float(np.percentile(standing_out, 99.9)), 3 * float(np.median(standing_out)), 0.03)
    marked = standing_out > threshold
    labels, count = ndimage.label(marked)
    if count:
        depth = ndimage.distance_transform_edt(np.pad(marked, 1))[1:-1, 1:-1]
        half_thickness = ndimage.maximum(depth, labels, index=np.arange(1, count + 1))
        broad = np.flatnonzero(np.asarray(half_thickness) > MAX_STROKE_SHARE * max(marked.shape)) + 1
        marked &= ~np.isin(labels, broad)
    return ndimage.binary_dilation(marked, iterations=2)


def ink_is_dark(gray: np.ndarray) -> bool:
    """Whether the ink is darker than the background (a pen on paper) or brighter (a canvas, MNIST).

    On a uniform background (and in small scans) the ink is the class of
    pixels that :func:`background_class` leaves over. Under uneven lighting,
    each pixel is compared with a median over a window a fifth of the image
    wide, which follows the lighting; the ink lies on the side where more
    pixels stand out, and farther, while noise, paper texture and the edges
    of shadows stand out about equally on both sides.
    """
    if not has_lighting(gray):
        background_pixels = background_class(gray)
        if background_pixels.all() or not background_pixels.any():
            return False
        return bool(gray[~background_pixels].mean() < gray[background_pixels].mean())
    small = limit_resolution(gray, BACKGROUND_SIDE)
    local = ndimage.median_filter(small, size=max(3, round(max(small.shape) / 5)), mode="nearest")
    residual = ndimage.gaussian_filter(gray, 1.0) - resize(local, (gray.shape[1], gray.shape[0]))
    spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    margin = max(2 * spread, 0.05)
    darker = float(np.clip(-residual - margin, 0, None).sum())
    brighter = float(np.clip(residual - margin, 0, None).sum())
    return darker > brighter


def estimate_background(gray: np.ndarray, dark_ink: bool) -> np.ndarray:
    """The background level at every pixel, following uneven lighting and shadows but not the ink.

    The pixels that stand out from the lighting envelope as ink are set
    aside; the background is the local average of the others, over a window
    small enough to follow vignetting and the edge of a shadow, all on a copy
    at most :data:`BACKGROUND_SIDE` pixels wide. Uniform backgrounds and
    small images get one level, that of :func:`background_class`.
    """
    if not has_lighting(gray):
        return np.full_like(gray, background_level(gray))
    small = ndimage.gaussian_filter(limit_resolution(gray, BACKGROUND_SIDE), 1.0)
    envelope = lighting_envelope(small, dark_ink)
    unmarked = (~ink_marks(envelope - small if dark_ink else small - envelope)).astype(np.float32)
    sigma = max(small.shape) / 40
    weight = ndimage.gaussian_filter(unmarked, sigma, mode="nearest")
    local = ndimage.gaussian_filter(small * unmarked, sigma, mode="nearest") / np.maximum(weight, 1e-3)
    background = np.where(weight > 0.1, local, envelope).astype(np.float32)
    return resize(background, (gray.shape[1], gray.shape[0])) if background.shape != gray.shape else background


def to_white_on_black(gray: np.ndarray) -> np.ndarray:
    """The image with bright ink on a flat dark background, whatever its polarity and lighting.

    For ink on paper, lighting multiplies, so the ink's contrast is also
    restored in proportion to how bright the paper was around it.
    """
    dark_ink = ink_is_dark(gray)
    background = estimate_background(gray, dark_ink)
    if dark_ink:
        return np.clip((background - gray) / np.maximum(background, 0.2), 0.0, 1.0)
    return np.clip((gray - background) / np.maximum(1.0 - background, 0.2), 0.0, 1.0)


def stretch_contrast(gray: np.ndarray) -> np.ndarray:
    """Map the background level to 0 and the ink's typical peak to 1.

    The peak is read after a light blur, so a single hot pixel does not set
    it, and from the brightest :data:`PEAK_SHARE` of pixels rather than the
    very brightest, so a dark speck of dust does not leave a faint pencil
    stroke below the ink threshold; anything brighter is clipped.
    """
    # A thick digit can cover most of a tightly cropped image, so the median alone may be ink.
    background = min(float(np.median(gray)), float(np.percentile(gray, 10)))
    smooth = ndimage.gaussian_filter(gray, 1.0) if min(gray.shape) >= 8 else gray
    brightest = float(smooth.max())
    peak = max(float(np.percentile(smooth, 100 * (1 - PEAK_SHARE))), background + 0.5 * (brightest - background))
    if brightest - background < MIN_CONTRAST / 2 or float(gray.max()) - background < MIN_CONTRAST:
        raise NoDigitFoundError("No digit found: the image is blank or a single colour.")
    return np.clip((gray - background) / (peak - background), 0.0, 1.0)


def suppress_texture(gray: np.ndarray) -> np.ndarray:
    """Set what remains of paper texture and compression noise to 0, keeping the ink's peak at 1."""
    background = gray[gray < INK_THRESHOLD]
    spread = 1.4826 * float(np.median(np.abs(background - np.median(background)))) if background.size else 0.0
    floor = min(0.5, max(MIN_TEXTURE_FLOOR, TEXTURE_DEVIATIONS * spread))
    return np.clip((gray - floor) / (1.0 - floor), 0.0, 1.0)


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Pixels bright enough to be part of a stroke."""
    return gray > INK_THRESHOLD


def ink_components(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label the 8-connected ink components; return the labels and each component's pixel count."""
    labels, count = ndimage.label(ink_mask(gray), structure=np.ones((3, 3), dtype=bool))
    return labels, np.bincount(labels.ravel(), minlength=count + 1)[1:]


def remove_specks(gray: np.ndarray) -> np.ndarray:
    """Clear ink components far smaller than the largest one (dust, dots of noise, JPEG debris).

    The faint rim around a kept stroke is kept with it; everything else
    outside the kept strokes goes to 0.
    """
    labels, areas = ink_components(gray)
    if areas.size <= 1:
        return gray
    return keep_components(gray, labels, np.flatnonzero(areas >= SPECK_SHARE * areas.max()) + 1)


def keep_components(gray: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``gray`` with only the labelled components in ``keep`` (and a two-pixel rim around them)."""
    kept = np.isin(labels, keep)
    return np.where(ndimage.binary_dilation(kept, iterations=2), gray, 0.0).astype(np.float32)


def drop_stray_marks(gray: np.ndarray) -> np.ndarray:
    """Clear minor ink components lying apart from the digit, such as a smudge or a shadow's corner.

    Components are taken largest first; a component much smaller than the
    largest (under :data:`STRAY_SHARE` of its ink) is kept only if it lies
    within :data:`STRAY_GAP` of the digit's size from the ink kept so far, as
    a broken stroke or the bar of a 5 does.
    """
    labels, areas = ink_components(gray)
    if areas.size <= 1:
        return gray
    boxes = ndimage.find_objects(labels)
    order = np.argsort(-areas)
    top, left, bottom, right = _box_edges(boxes[order[0]])
    keep = [order[0] + 1]
    for index in order[1:]:
        row_slice, column_slice = boxes[index]
        size = max(bottom - top, right - left)
        gap = max(
            top - row_slice.stop, row_slice.start - bottom, left - column_slice.stop, column_slice.start - right, 0
        )
        if areas[index] >= STRAY_SHARE * areas[order[0]] or gap <= STRAY_GAP * size:
            keep.append(index + 1)
            top, left = min(top, row_slice.start), min(left, column_slice.start)
            bottom, right = max(bottom, row_slice.stop), max(right, column_slice.stop)
    return keep_components(gray, labels, np.array(keep))


def reject_scattered_ink(gray: np.ndarray) -> None:
    """Raise :class:`NoDigitFoundError` when no ink component dominates, as in smoothed noise or a speckled page.

    A digit, even one written with broken strokes, has one component holding
    at least half its ink (every validation sample does); scattered marks do not.
    """
    labels, areas = ink_components(gray)
    if areas.size and areas.max() < MIN_MAIN_SHARE * areas.sum():
        raise NoDigitFoundError("No digit found: the ink is scattered in many small marks, not drawn as one digit.")


def reject_soft_marks(gray: np.ndarray) -> None:
    """Raise :class:`NoDigitFoundError` when the ink is sparse and nowhere solid, as smooth or blocky noise leaves it.

    A digit's strokes are either solid (most of their pixels at full ink,
    however thin the pen) or, when soft, thick enough to fill a good part of
    their box. Cleaning turns low-frequency noise into a few faint ridges
    that are neither, and a model reads them as a confident 1 or 7. Of
    1,600 validation renderings (``digitlab.checks.realworld``, seed 4) none falls
    below both limits; 13 of 18 smooth or blocky gray noise images that pass the
    other checks do.
    """
    mask = ink_mask(gray)
    if not mask.any():
        return
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    fill = mask.sum() / ((rows[-1] - rows[0] + 1) * (columns[-1] - columns[0] + 1))
    # A pixel is part of a solid stroke when it or a neighbour is at full ink: the soft rim of a 1-2 pixel pen
    # line lies beside its solid centre, while a noise ridge is faint along its whole length.
    solid = (ndimage.grey_dilation(gray, size=(3, 3))[mask] > SOLID_LEVEL).sum() / mask.sum()
    if fill < SOFT_FILL and solid < SOFT_SOLID:
        raise NoDigitFoundError("No digit found: the image holds faint shading, like noise, not a digit's strokes.")


def _box_edges(box: tuple[slice, slice]) -> tuple[int, int, int, int]:
    return box[0].start, box[1].start, box[0].stop, box[1].stop


def clean_ink(gray: np.ndarray) -> np.ndarray:
    """White ink on a black, flat, speck-free background from any 2-D luminance array in [0, 1].

    Shared by single-digit preprocessing and the segmentation of whole numbers.
    """
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise ImageError(f"Expected a 2-D image, got an array of shape {gray.shape}.")
    if not np.isfinite(gray).all():
        raise ImageError("The image holds values that are not finite numbers.")
    gray = limit_resolution(np.clip(gray, 0.0, 1.0).astype(np.float32))
    reject_noise(gray)
    gray = smooth_noise(gray)
    return remove_specks(fill_porous_ink(suppress_texture(stretch_contrast(to_white_on_black(gray)))))


def main_share(gray: np.ndarray) -> float:
    """The share of all ink in the largest 8-connected piece (1 when there is no ink)."""
    _, areas = ink_components(gray)
    return float(areas.max() / areas.sum()) if areas.size else 1.0


def fill_porous_ink(gray: np.ndarray) -> np.ndarray:
    """Close the small gaps of grainy strokes (chalk on a board, a dry pen) so each stroke is one piece.

    Such strokes come out of cleaning as hundreds of grains, which speck
    removal would then thin out and the scattered-ink check refuse. Closing
    with growing windows stops as soon as one piece holds most of the ink; a
    window never spans more than :data:`POROUS_GAP_SHARE` of the image, so
    separate strokes and digits stay apart. Solid strokes are left untouched.
    """
    if main_share(gray) >= POROUS_MAIN_SHARE:
        return gray
    largest = max(3, round(POROUS_GAP_SHARE * max(gray.shape)))
    for window in range(3, largest + 1, 2):
        closed = ndimage.grey_closing(gray, size=(window, window))
        if main_share(closed) >= POROUS_MAIN_SHARE:
            return closed
    return gray


def crop_to_ink(gray: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding all ink; raises if there is too little ink."""
    mask = ink_mask(gray)
    needed = max(MIN_INK_PIXELS, MIN_INK_FRACTION * gray.size)
    if mask.sum() < needed:
        raise NoDigitFoundError("No digit found: draw or upload a digit with more ink.")
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    return gray[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]


def thin_to_skeleton(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide centre lines of a binary mask (Zhang-Suen thinning).

    Works on a single ``(H, W)`` mask or a stack ``(..., H, W)``; each pass
    updates every pixel of every image at once.
    """
    leading = [(0, 0)] * (mask.ndim - 2)
    image = np.pad(np.asarray(mask, dtype=bool), [*leading, (1, 1), (1, 1)])
    height, width = image.shape[-2:]
    core = (Ellipsis, slice(1, height - 1), slice(1, width - 1))
    # The eight neighbours P2..P9 clockwise from north, as Zhang and Suen number them.
    offsets = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
    changed = True
    while changed:
        changed = False
        for first_pass in (True, False):
            p2, p3, p4, p5, p6, p7, p8, p9 = (
                image[..., 1 + dr : height - 1 + dr, 1 + dc : width - 1 + dc] for dr, dc in offsets
            )
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            neighbours = sum(p.astype(np.uint8) for p in ring[:8])
            transitions = sum((~a & b).astype(np.uint8) for a, b in zip(ring[:-1], ring[1:], strict=True))
            side = (~(p2 & p4 & p6) & ~(p4 & p6 & p8)) if first_pass else (~(p2 & p4 & p8) & ~(p2 & p6 & p8))
            remove = image[core] & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & side
            if remove.any():
                image[core] &= ~remove
                changed = True
    return image[core]


def stroke_width(mask: np.ndarray, skeleton: np.ndarray | None = None) -> float:
    """The mean stroke width of a binary mask in pixels: its area over its centre-line length.

    ``skeleton`` is the mask's centre line when the caller has already traced it.
    """
    length = int((thin_to_skeleton(mask) if skeleton is None else skeleton).sum())
    return float(mask.sum()) / length if length else 0.0


def draw_strokes(skeleton: np.ndarray, width: float) -> np.ndarray:
    """Strokes of the given width (pixels) along a skeleton, with a one-pixel soft edge."""
    distance = ndimage.distance_transform_edt(~skeleton)
    return np.clip(width / 2 + 0.5 - distance, 0.0, 1.0).astype(np.float32)


def scale_to_box(gray: np.ndarray, box: int) -> np.ndarray:
    """Scale so the longer side is ``box`` pixels, keeping the aspect ratio."""
    height, width = gray.shape
    scale = box / max(height, width)
    return resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))))


def erode_strokes(mask: np.ndarray, width: float, target: float) -> np.ndarray:
    """Strokes of a mask whose mean width is ``width`` pared down evenly to ``target``, with a soft edge.

    Unlike redrawing along the skeleton, paring keeps the outline's shape,
    which matters for the small loops of a thickly written 6, 8 or 9.
    """
    depth = ndimage.distance_transform_edt(mask)
    # A blob's mean width can exceed twice its depth; its core is always kept.
    paring = min((width - target) / 2, float(depth.max()) - 1.0)
    return np.clip(depth - paring + 0.5, 0.0, 1.0).astype(np.float32)


def widen_before_shrinking(digit: np.ndarray) -> np.ndarray:
    """Widen strokes that shrinking to :data:`WORK_BOX` would leave under :data:`MIN_SHRUNK_WIDTH` pixels.

    Averaging a 1-pixel line down by a factor of five leaves it at a fifth of
    its strength, and a threshold then breaks it into fragments. The width is
    estimated as twice the ink's area over its outline (exact for bars two or
    more pixels wide), and a grey dilation brings it up to the width needed.
    """
    factor = max(digit.shape) / WORK_BOX
    mask = digit > 0.5
    outline = int((mask & ~ndimage.binary_erosion(mask)).sum())
    if factor <= 1 or outline == 0:
        return digit
    width = 2 * float(mask.sum()) / outline
    needed = MIN_SHRUNK_WIDTH * factor
    if width >= needed:
        return digit
    window = int(np.ceil(needed - width)) + 1
    return ndimage.grey_dilation(digit, size=(window, window))


def normalise_stroke_width(digit: np.ndarray) -> np.ndarray:
    """The digit at :data:`WORK_BOX` pixels, its strokes brought into MNIST's range of widths.

    Hair-thin lines (a 1-pixel pen on a large canvas) are redrawn along their
    centre line at MNIST's typical width; fat ones (a finger on a small
    canvas, a marker) are pared down to :data:`THICK_STROKE_TARGET`. Widths
    within MNIST's usual range are left as they are. Whatever the case, every
    part of the centre line is kept at least :data:`MIN_STROKE_WIDTH` wide, so
    the thin base of a 2 drawn with a pressure-sensitive pen is neither pared
    away nor left faint.
    """
    work = scale_to_box(widen_before_shrinking(digit), WORK_BOX)
    peak = float(work.max())
    if peak <= 0:
        raise NoDigitFoundError("No digit found: draw or upload a digit with more ink.")
    # Shrinking a hair-thin line leaves it faint, so the peak is brought back to full strength.
    work = np.clip(work / peak, 0.0, 1.0)
    mask = work > 0.5
    skeleton = thin_to_skeleton(mask)
    width = stroke_width(mask, skeleton)
    low, high = TYPICAL_STROKE_RANGE
    if width < low:
        return draw_strokes(skeleton, TYPICAL_STROKE_WIDTH)
    if width > high:
        # A loop filled in by a bold pen adds area but little centre line, so the mean width overstates the
        # strokes; their depth along the centre line does not, and paring by the mean would leave a dot.
        width = min(width, 2 * float(np.median(ndimage.distance_transform_edt(mask)[skeleton])))
        if width > high:
            work = erode_strokes(mask, width, THICK_STROKE_TARGET)
    return np.maximum(work, draw_strokes(skeleton, MIN_STROKE_WIDTH))


def fit_into_box(gray: np.ndarray, box: int = DIGIT_BOX) -> np.ndarray:
    """Scale so the longer side is ``box`` pixels, keeping the aspect ratio."""
    return np.clip(scale_to_box(gray, box), 0.0, 1.0)


def centre_by_mass(digit: np.ndarray, size: int = IMAGE_SIDE) -> np.ndarray:
    """Place ``digit`` in a ``size`` x ``size`` field with its centre of mass at ``size / 2``."""
    height, width = digit.shape
    canvas = np.zeros((size, size), dtype=np.float32)
    top, left = (size - height) // 2, (size - width) // 2
    canvas[top : top + height, left : left + width] = digit
    if canvas.sum() <= 0:
        raise NoDigitFoundError("No digit found: draw or upload a digit with more ink.")
    centre_row, centre_column = ndimage.center_of_mass(canvas)
    # MNIST's digits have their centre of mass at pixel (14, 14), not at the geometric 13.5.
    shift = (size / 2 - centre_row, size / 2 - centre_column)
    return ndimage.shift(canvas, shift, order=1, mode="constant", cval=0.0)


def digit_to_mnist(digit: np.ndarray) -> np.ndarray:
    """The ``uint8`` 28x28 model input from a white-on-black crop holding exactly one digit."""
    centred = centre_by_mass(fit_into_box(normalise_stroke_width(digit)))
    return np.clip(np.round(centred * 255), 0, 255).astype(np.uint8)


def preprocess_array(gray: np.ndarray) -> np.ndarray:
    """MNIST-style ``uint8`` 28x28 input from a 2-D luminance array in [0, 1]."""
    digit = drop_stray_marks(clean_ink(gray))
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
