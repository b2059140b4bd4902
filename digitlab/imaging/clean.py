"""From a luminance array to white ink on a flat black background, or a refusal: no digit found.

Pure noise is refused first; a small scan of one digit, or a short line of them, is enlarged. Then the polarity is
detected, uneven lighting is removed, the contrast is stretched so the ink
peaks at 1, the faint lines of ruled paper and paper texture are cleared,
grainy strokes are closed and specks are dropped (:func:`clean_ink`,
which the segmentation of whole numbers shares). For a single digit, stray
marks apart from it are cleared, and ink that is scattered or only faint
shading is refused rather than read as a digit.
"""

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from digitlab.errors import ImageError, NoDigitFoundError
from digitlab.imaging.decode import ANALYSIS_SIDE, limit_resolution, resize, resize_longer_side

# A pixel counts as ink once it is this far from the background towards the ink.
INK_THRESHOLD = 0.25
MIN_CONTRAST = 0.15
# Neighbouring pixels along a stroke are alike; below this correlation an image is noise, not a digit.
# Digits of every validation source score above 0.3, noise of 28x28 pixels or more below 0.15.
MIN_NEIGHBOUR_CORRELATION = 0.25
# Uneven lighting is only looked for in images at least this large; smaller ones are crops or scans.
MIN_SIDE_FOR_LIGHTING = 64
# The background is estimated on a copy with at most this longer side.
BACKGROUND_SIDE = 160
# Regions standing out from the lighting envelope with a half-thickness above this share of the image are
# lighting (a dark corner, a shadow falling in from outside), unless they are a marker's solid stroke: inside
# the frame, with at least half their pixels standing out MARKER_SOLIDITY times as far as ink must. On
# realworld's phone photos (seed 7) such strokes had a median 1.58-1.85 times that; smooth noise fields, 1.31-1.47.
MAX_STROKE_SHARE = 1 / 16
MARKER_SOLIDITY = 1.5
# The ink's peak level is read from this share of the brightest pixels (after polarity is settled).
PEAK_SHARE = 0.001
# Pixel noise above this share of the image's contrast is blurred away before anything else.
NOISE_SHARE = 0.04
# A background is uniform (a drawing or a clean scan) when this share of pixels is within UNIFORM_TOLERANCE of it.
UNIFORM_SHARE = 0.4
UNIFORM_TOLERANCE = 3 / 255
# An image whose border sits at one level (within FLAT_BORDER_TOLERANCE) along at least FLAT_BORDER_SHARE of it is
# paper or a canvas as a scanner or an app saves it, though a tightly cropped digit may cover most of it; a photo's
# border varies with the light and the sensor's noise. Tight crops of MNIST digits enlarged 5 to 8 times: median
# share 0.69, 95 % above 0.52; realworld's phone photos (seed 7): at most 0.19.
FLAT_BORDER_SHARE = 0.4
FLAT_BORDER_TOLERANCE = 1.5 / 255
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
# Ink broken into at least POROUS_MIN_PIECES pieces is porous (chalk, a dry pen) when closing gaps no wider than
# POROUS_GAP_SHARE of the image's longer side joins them into at most POROUS_JOINED of as many pieces. The digits of
# a number, or a digit and a few specks of dust, lie too far apart to be joined that way.
POROUS_MIN_PIECES = 8
POROUS_JOINED = 0.25
POROUS_GAP_SHARE = 0.03
# Straight lines across at least RULED_LINE_SHARE of the image's width or height, between MIN_LINE_LEVEL and
# FAINT_LINE_LEVEL of the ink's peak, are the lines of ruled or squared paper, printed fainter than a pen writes, and
# are cleared where a pixel stands less than LINE_MARGIN above its line; a stroke a line was printed over is bridged
# again across LINE_BRIDGE pixels.
RULED_LINE_SHARE = 0.6
FAINT_LINE_LEVEL = 0.6
MIN_LINE_LEVEL = 0.05
LINE_MARGIN = 0.15
LINE_BRIDGE = 7
# Paper lines are thinner than this many pixels (at the analysis size of at most 768 pixels).
LINE_THICKNESS = 7
# A single digit scanned at SMALL_SCAN_SIDE pixels or fewer (an 8x8, 16x16 or 32x32 form, a 12-pixel envelope digit,
# an MNIST image) is enlarged to ENLARGED_SCAN_SIDE pixels before it is cleaned: at its own size, neighbouring pixels
# across a stroke differ as much as noise does, so noise smoothing blurs the strokes away. Below the 64 pixels at
# which lighting is looked for, so the enlarged scan is still cleaned as a scan.
SMALL_SCAN_SIDE = 32
ENLARGED_SCAN_SIDE = 56
# A number scanned less than ENLARGED_LINE_HEIGHT pixels tall (16x16 form digits or envelope digits side by side) is
# enlarged to that height before it is cleaned, for the same reason; still below MIN_SIDE_FOR_LIGHTING, so it is
# cleaned as a scan. Of the 200 numbers `realworld` composes with development seeds 7 and 8, shrunk so that their digits
# were 32, 24, 16 and 10 pixels tall, the CNN read 187, 186, 178 and 164 exactly at that size and 188, 187, 184 and 174
# enlarged (at their own size, digits 40 pixels tall or more and never enlarged, 190); seeds 5 and 6, digits 32, 20, 16
# and 12 pixels tall: 185, 180, 176 and 170, enlarged 186, 185, 185 and 184. Enlarged to 96 pixels, lines up to 64
# pixels tall read a few more, but 23 of 100 single envelope digits of seed 5 were then cut in two (none at 60).
ENLARGED_LINE_HEIGHT = 60


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


def outermost(values: np.ndarray) -> np.ndarray:
    """The values of an image's outermost rows and columns, in one flat array."""
    return np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])


def border_is_flat(gray: np.ndarray) -> bool:
    """Whether most of the image's outermost pixels sit at one level, as a scan's or a drawing's do."""
    edge = outermost(gray)
    return bool((np.abs(edge - np.median(edge)) <= FLAT_BORDER_TOLERANCE).mean() >= FLAT_BORDER_SHARE)


def has_lighting(gray: np.ndarray) -> bool:
    """Whether the image may have uneven lighting: large enough to be a photo, without a uniform background, and
    without the flat border of a scan or a drawing (a tightly cropped digit leaves little uniform background)."""
    return min(gray.shape) >= MIN_SIDE_FOR_LIGHTING and not background_is_uniform(gray) and not border_is_flat(gray)


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
    edge = outermost(bright)
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
    with a half-thickness above :data:`MAX_STROKE_SHARE` of the image is
    lighting, not ink. A marker's broad stroke is told apart by where it is and
    how it stands out: inside the frame (lighting comes from beyond it), and
    solid, with steep edges, where lighting rises gradually
    (:data:`MARKER_SOLIDITY`). The marks are widened by two pixels to cover
    the strokes' soft edges.
    """
    threshold = max(0.5 * float(np.percentile(standing_out, 99.9)), 3 * float(np.median(standing_out)), 0.03)
    marked = standing_out > threshold
    labels, count = ndimage.label(marked)
    if count:
        index = np.arange(1, count + 1)
        depth = ndimage.distance_transform_edt(np.pad(marked, 1))[1:-1, 1:-1]
        half_thickness = np.asarray(ndimage.maximum(depth, labels, index=index))
        at_edge = np.isin(index, outermost(labels))
        solid = np.asarray(ndimage.median(standing_out, labels, index=index)) >= MARKER_SOLIDITY * threshold
        broad = np.flatnonzero((half_thickness > MAX_STROKE_SHARE * max(marked.shape)) & (at_edge | ~solid)) + 1
        marked &= ~np.isin(labels, broad)
    return ndimage.binary_dilation(marked, iterations=2)


def polarity_and_background(gray: np.ndarray) -> tuple[bool, np.ndarray]:
    """Whether the ink is darker than the background, and the background level at every pixel.

    Polarity: the ink is darker (a pen on paper) or brighter (a canvas, MNIST).
    On a uniform background (and in small scans) the ink is the class of
    pixels that :func:`background_class` leaves over, and the background is
    that class's median. Under uneven lighting, each pixel is compared with a
    median over a window a fifth of the image wide, which follows the
    lighting; the ink lies on the side where more pixels stand out, and
    farther, while noise, paper texture and the edges of shadows stand out
    about equally on both sides. The background then follows the lighting and
    shadows but not the ink (:func:`uneven_background`).
    """
    # The lighting test and Otsu's split are made once for both answers: on a drawing they are a large share of
    # the preprocessing's time.
    if has_lighting(gray):
        dark_ink = ink_is_dark_under_lighting(gray)
        return dark_ink, uneven_background(gray, dark_ink)
    background_pixels = background_class(gray)
    return ink_is_dark_on(gray, background_pixels), np.full_like(gray, float(np.median(gray[background_pixels])))


def ink_is_dark_on(gray: np.ndarray, background_pixels: np.ndarray) -> bool:
    """Whether the ink, the pixels outside a one-level background, is darker than that background."""
    if background_pixels.all() or not background_pixels.any():
        return False
    return bool(gray[~background_pixels].mean() < gray[background_pixels].mean())


def ink_is_dark_under_lighting(gray: np.ndarray) -> bool:
    """Whether the ink is darker than the paper around it, each pixel compared with its lighting's local median."""
    small = limit_resolution(gray, BACKGROUND_SIDE)
    local = ndimage.median_filter(small, size=max(3, round(max(small.shape) / 5)), mode="nearest")
    residual = ndimage.gaussian_filter(gray, 1.0) - resize(local, (gray.shape[1], gray.shape[0]))
    spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    margin = max(2 * spread, 0.05)
    darker = float(np.clip(-residual - margin, 0, None).sum())
    brighter = float(np.clip(residual - margin, 0, None).sum())
    return darker > brighter


def uneven_background(gray: np.ndarray, dark_ink: bool) -> np.ndarray:
    """The background level at every pixel under uneven lighting, following lighting and shadows but not the ink.

    The pixels that stand out from the lighting envelope as ink are set
    aside; the background is the local average of the others, over a window
    small enough to follow vignetting and the edge of a shadow, all on a copy
    at most :data:`BACKGROUND_SIDE` pixels wide.
    """
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
    dark_ink, background = polarity_and_background(gray)
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


def remove_faint_lines(gray: np.ndarray) -> np.ndarray:
    """Clear the faint ruled or squared lines of notebook paper, keeping the pen's strokes where they cross them.

    A grey opening with a long horizontal or vertical window keeps only
    straight runs at least :data:`RULED_LINE_SHARE` of the image long; those
    under :data:`FAINT_LINE_LEVEL` of the ink are subtracted. A digit's own
    long stroke (the stem of a 1, the bar of a 7) is written at full ink and
    stays. Images smaller than a photo (:data:`MIN_SIDE_FOR_LIGHTING`) are
    left alone: realworld's 8x8 UCI scans lost a tenth of their readings.
    """
    # Paper lines come with photos and page scans; in a small scan a digit's own gray stroke may span the image.
    if min(gray.shape) < MIN_SIDE_FOR_LIGHTING:
        return gray
    # Each opening is made only where it can find something: a line needs RULED_LINE_SHARE of a row (or column)
    # above the line level, and most drawings have no such row. This keeps a drawing's reading fast.
    marked = gray > MIN_LINE_LEVEL
    lines = np.zeros_like(gray)
    for axis in (1, 0):
        length = round(RULED_LINE_SHARE * gray.shape[axis])
        if marked.sum(axis=axis).max() < length:
            continue
        along = ndimage.grey_opening(gray, size=(1, length) if axis == 1 else (length, 1))
        if along.max() > MIN_LINE_LEVEL:
            # Paper lines are thin: what also survives an opening across a line's width is a broad shape, such as
            # the body of a digit drawn with a marker, and stays.
            across = ndimage.grey_opening(along, size=(LINE_THICKNESS, 1) if axis == 1 else (1, LINE_THICKNESS))
            lines = np.maximum(lines, along - across)
    # Only pixels of the line itself lose it: where the pen crosses a line, the ink stands far above it. Where a line
    # was printed over a stroke instead, the stroke is bridged again across the line's width.
    on_faint_line = (lines > MIN_LINE_LEVEL) & (lines < FAINT_LINE_LEVEL) & (gray <= lines + LINE_MARGIN)
    if not on_faint_line.any():
        return gray
    cleared = np.where(on_faint_line, np.clip(gray - lines, 0.0, 1.0), gray)
    bridged = np.maximum(
        ndimage.grey_closing(cleared, size=(LINE_BRIDGE, 1)), ndimage.grey_closing(cleared, size=(1, LINE_BRIDGE))
    )
    return np.where(on_faint_line, bridged, cleared).astype(np.float32)


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


def enlarge_small_scan(gray: np.ndarray) -> np.ndarray:
    """``gray`` enlarged so its longer side is :data:`ENLARGED_SCAN_SIDE` when it is :data:`SMALL_SCAN_SIDE` or less."""
    if max(gray.shape) > SMALL_SCAN_SIDE:
        return gray
    return np.clip(resize_longer_side(gray, ENLARGED_SCAN_SIDE), 0.0, 1.0)


def enlarge_short_line(gray: np.ndarray) -> np.ndarray:
    """``gray`` enlarged to :data:`ENLARGED_LINE_HEIGHT` pixels tall, its aspect kept, when it is shorter; never to
    more pixels than an image of the analysis size holds."""
    height, width = gray.shape
    if height >= ENLARGED_LINE_HEIGHT:
        return gray
    scale = min(ENLARGED_LINE_HEIGHT / height, ANALYSIS_SIDE / np.sqrt(height * width))
    if scale <= 1:
        return gray
    return np.clip(resize(gray, (round(width * scale), round(height * scale))), 0.0, 1.0)


def clean_ink(gray: np.ndarray, *, enlarge: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """White ink on a black, flat, speck-free background from any 2-D luminance array in [0, 1].

    Shared by single-digit preprocessing and the segmentation of whole numbers. ``enlarge`` enlarges a small
    scan once it has passed the noise check, which enlarging would smooth out: :func:`enlarge_small_scan` for one
    digit, :func:`enlarge_short_line` for a number (whose boxes are then scaled back to the image's own pixels).
    """
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise ImageError(f"Expected a 2-D image, got an array of shape {gray.shape}.")
    if not np.isfinite(gray).all():
        raise ImageError("The image holds values that are not finite numbers.")
    gray = limit_resolution(np.clip(gray, 0.0, 1.0).astype(np.float32))
    reject_noise(gray)
    if enlarge is not None:
        gray = enlarge(gray)
    gray = smooth_noise(gray)
    return remove_specks(
        fill_porous_ink(suppress_texture(remove_faint_lines(stretch_contrast(to_white_on_black(gray)))))
    )


def fill_porous_ink(gray: np.ndarray) -> np.ndarray:
    """Close the small gaps of grainy strokes (chalk on a board, a dry pen) so each stroke is one piece.

    Such strokes come out of cleaning as dozens of fragments, which speck
    removal would then thin out and the scattered-ink check refuse. Closing
    with growing windows stops as soon as most pieces are joined; a window
    never spans more than :data:`POROUS_GAP_SHARE` of the image, so separate
    digits stay apart. Solid strokes, and digits written side by side, are
    left untouched.
    """
    pieces = ink_components(gray)[1].size
    if pieces < POROUS_MIN_PIECES:
        return gray
    largest = max(3, round(POROUS_GAP_SHARE * max(gray.shape)))
    for window in range(3, largest + 1, 2):
        closed = ndimage.grey_closing(gray, size=(window, window))
        if ink_components(closed)[1].size <= POROUS_JOINED * pieces:
            return closed
    return gray
