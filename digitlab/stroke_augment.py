"""Training-time stroke-width jitter: MNIST digits redrawn with thinner or thicker pens.

MNIST's pen widths are narrow (most strokes are 2-3 pixels of the 28x28
image), while users draw with fingers, markers and hair-thin styluses.
Preprocessing pares down or redraws only the extremes; this augmentation
teaches a network the rest of the range. Every operation works on a whole
stack of images at once, at double resolution so that a change of half an
MNIST pixel is possible, in chunks to bound memory.
"""

import numpy as np
from scipy import ndimage

# Changes of stroke width, in MNIST pixels, that an augmented image may receive.
WIDTH_CHANGES = (-1.0, -0.5, 0.5, 1.0, 1.5)
# Strokes are never thinned below this width (MNIST pixels), so no stroke disappears.
MIN_WIDTH_AFTER_THINNING = 2.0
_UPSCALE = 2
_CHUNK = 4096


def pen(widening: int) -> np.ndarray:
    """A round footprint that widens strokes by ``widening`` pixels, for one image of a stack: (1, k, k).

    Dilating with a footprint ``k`` pixels across widens a stroke by ``k - 1``.
    """
    across = widening + 1
    offsets = np.arange(across) - widening / 2
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (across / 2) ** 2)[None]


def enlarge(images: np.ndarray) -> np.ndarray:
    """Bilinearly enlarged float copies in [0, 1] of a ``(N, 28, 28)`` stack, at double resolution."""
    return ndimage.zoom(
        images.astype(np.float32) / 255.0, (1, _UPSCALE, _UPSCALE), order=1, mode="grid-constant", grid_mode=True
    )


def shrink(images: np.ndarray) -> np.ndarray:
    """Average double-resolution float images back to MNIST's size as ``uint8``."""
    count, height, width = images.shape
    blocks = images.reshape(count, height // _UPSCALE, _UPSCALE, width // _UPSCALE, _UPSCALE).mean(axis=(2, 4))
    return np.clip(np.round(blocks * 255), 0, 255).astype(np.uint8)


def stroke_widths(images: np.ndarray) -> np.ndarray:
    """Each image's mean stroke width in MNIST pixels: twice its ink area over its outline's length."""
    ink = np.asarray(images) > 127
    outline = ink & ~ndimage.binary_erosion(ink, structure=np.ones((1, 3, 3), dtype=bool))
    return 2 * ink.sum(axis=(1, 2)) / np.maximum(outline.sum(axis=(1, 2)), 1)


def change_width(images: np.ndarray, change: float) -> np.ndarray:
    """Every image of a ``uint8`` stack with its strokes ``change`` MNIST pixels wider (or thinner if negative)."""
    widening = round(abs(change) * _UPSCALE)
    if widening == 0:
        return np.array(images, dtype=np.uint8)
    morphology = ndimage.grey_dilation if change > 0 else ndimage.grey_erosion
    return shrink(morphology(enlarge(images), footprint=pen(widening)))


def vary_stroke_width(images: np.ndarray, rng: np.random.Generator, share: float = 0.5) -> np.ndarray:
    """A copy of a ``(N, 28, 28)`` ``uint8`` stack where ``share`` of the images get a random stroke width.

    Each chosen image gets one change from :data:`WIDTH_CHANGES`; thinning is
    only drawn for images whose strokes stay at least
    :data:`MIN_WIDTH_AFTER_THINNING` wide. The work is done per change, on
    all the images that drew it at once.
    """
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 stack of shape (N, H, W), got {images.dtype} {images.shape}.")
    if not 0 <= share <= 1:
        raise ValueError(f"share must be between 0 and 1, got {share}.")
    changes = np.array(WIDTH_CHANGES)
    drawn = changes[rng.integers(0, len(changes), len(images))]
    too_thin = stroke_widths(images) + drawn < MIN_WIDTH_AFTER_THINNING
    drawn = np.where(too_thin, np.abs(drawn), drawn)
    drawn = np.where(rng.random(len(images)) < share, drawn, 0.0)
    result = np.array(images, dtype=np.uint8)
    for change in np.unique(drawn[drawn != 0]):
        chosen = np.flatnonzero(drawn == change)
        for start in range(0, len(chosen), _CHUNK):
            part = chosen[start : start + _CHUNK]
            result[part] = change_width(images[part], float(change))
    return result
