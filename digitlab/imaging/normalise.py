"""From a clean white-on-black crop to MNIST's form: 28x28, strokes of MNIST's width, centred by mass.

MNIST's own recipe is followed: the digit's bounding box is scaled so its
longer side is 20 pixels (keeping the aspect ratio) and placed in a 28x28
field so that its centre of mass is at the centre. Before that, strokes far
thinner or thicker than MNIST's are redrawn or pared to a typical width.
"""

import numpy as np
from scipy import ndimage

from digitlab.data.mnist import IMAGE_SIDE
from digitlab.errors import NoDigitFoundError
from digitlab.imaging.clean import ink_mask
from digitlab.imaging.decode import resize

DIGIT_BOX = 20
# Fewer ink pixels than this fraction of the image (and fewer than MIN_INK_PIXELS) means no digit. A digit written
# 2 % as tall as a photo is wide still has more. At ten times this limit, 150 MNIST test digits 25 pixels tall in a
# 1000-pixel image, or 60 in a 3000-pixel one, were all refused (41 % at 40 pixels); the CNN reads all of them now.
MIN_INK_FRACTION = 0.00005
MIN_INK_PIXELS = 4
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


def normalise_stroke_width(digit: np.ndarray, *, keep_thin_parts: bool = True) -> np.ndarray:
    """The digit at :data:`WORK_BOX` pixels, its strokes brought into MNIST's range of widths.

    Hair-thin lines (a 1-pixel pen on a large canvas) are redrawn along their
    centre line at MNIST's typical width; fat ones (a finger on a small
    canvas, a marker) are pared down to :data:`THICK_STROKE_TARGET`. Widths
    within MNIST's usual range are left as they are. Whatever the case, every
    part of the centre line is kept at least :data:`MIN_STROKE_WIDTH` wide, so
    the thin base of a 2 drawn with a pressure-sensitive pen is neither pared
    away nor left faint; ``keep_thin_parts=False`` leaves that out.
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
    return np.maximum(work, draw_strokes(skeleton, MIN_STROKE_WIDTH)) if keep_thin_parts else work


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


def digit_to_mnist(digit: np.ndarray, *, keep_thin_parts: bool = True) -> np.ndarray:
    """The ``uint8`` 28x28 model input from a white-on-black crop holding exactly one digit."""
    centred = centre_by_mass(fit_into_box(normalise_stroke_width(digit, keep_thin_parts=keep_thin_parts)))
    return np.clip(np.round(centred * 255), 0, 255).astype(np.uint8)
