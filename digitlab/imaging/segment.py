"""Read a whole number: split an image into its digits, recognise each, and join them left to right.

The image is cleaned as for a single digit (:func:`digitlab.imaging.clean.clean_ink`), a short line
enlarged first (:func:`number_ink`), then its ink is grouped into digits:

1. connected components of ink are found, and the line's height is taken
   from the substantial ones;
2. the pieces of one digit are merged (:func:`group_components`): tall
   components sharing most of their columns, and small fragments (the bar
   of a 5, a broken-off tail) with the tall component they overlap or
   nearly touch; fragments far from any digit are dropped;
3. a group wide enough to hold touching digits is cut (:func:`split_wide`)
   straight down or along a path through the least ink, starting from the
   columns with the least ink, and the cut is kept when the width, the
   model's readings of the whole and of the pieces, how much ink the cut
   goes through and a small network trained to tell one digit from several
   (:mod:`digitlab.models.splitter`) say two digits are likelier than one
   (:func:`split_evidence`);
4. each digit goes through the same MNIST-style normalisation as a single
   digit, and the digits are ordered by the horizontal centre of their boxes.

Boxes are reported as ``[x, y, width, height]`` in the pixels of the image
as displayed (after its EXIF rotation).
"""

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import expit

from digitlab.errors import NoDigitFoundError
from digitlab.imaging.clean import clean_ink, enlarge_short_line, ink_components, ink_mask, reject_soft_marks
from digitlab.imaging.decode import DECODED_SCALE, array_to_gray, load_image, to_grayscale
from digitlab.imaging.normalise import crop_to_ink, digit_to_mnist
from digitlab.models.base import Predictor, is_low_confidence
from digitlab.models.detector import ScreenedDetector
from digitlab.models.splitter import SplitNetwork

# Components sharing at least this share of the narrower one's columns belong to one digit.
COLUMN_OVERLAP = 0.5
# A component lower than FRAGMENT_HEIGHT of the line's height, with less than FRAGMENT_AREA of a
# typical digit's ink, is a fragment of a digit; it joins one within FRAGMENT_REACH line heights.
FRAGMENT_HEIGHT = 0.5
FRAGMENT_AREA = 0.5
FRAGMENT_REACH = 1.0
# A group narrower than MAYBE_SEVERAL times the line's height is one digit; one wider than
# SURELY_SEVERAL times holds touching digits; in between, split_evidence decides.
MAYBE_SEVERAL = 0.4
SURELY_SEVERAL = 2.0
# split_evidence's weights, one per feature of split_features and then the intercept: width in line
# heights; log-odds of the model's confidence in the whole, the weaker and the stronger piece; ink rows
# the cut goes through, in line heights; strokes it crosses; ink in the cut's column against the median;
# the split network's log-odds that the region holds several digits.
# Fitted by logistic regression (C=10) on the 1,835 regions that numbers composed with seeds 1 and 2 give, read by the
# shipped CNN and split network; `python scripts/fit_split_weights.py` refits them and prints them beside these.
SPLIT_WEIGHTS = (1.86, -0.168, 0.333, 0.2, -1.785, 0.251, 0.374, 0.664, -5.46)
# The weights of the same features without the split network's, for reading with no split network at hand (a
# models folder without one, the unit tests). Fitted as above, with the CNN shipped before the one fine-tuned on
# writing styles.
SPLIT_WEIGHTS_WITHOUT_NETWORK = (4.293, -0.391, 0.383, 0.256, -2.137, -0.691, -1.07, -4.083)
# Cuts are tried at the columns with the least ink, at most CUT_CANDIDATES per group; each piece must
# be at least MIN_PIECE_WIDTH wide and span MIN_PIECE_HEIGHT of the line's height. A 1 touching its
# neighbour is often narrower than a quarter of the line's height, so 0.15 rather than 0.25 lets such a
# pair be cut. A cut that leaves a piece lower than MIN_PIECE_HEIGHT takes the tail or the bar off one wide
# digit (a 2, a 5). On numbers composed with seeds 1 and 2, 0.75 rather than 0.6 over-split a third fewer
# numbers and missed about as many touching pairs.
CUT_CANDIDATES = 4
MIN_PIECE_WIDTH = 0.15
MIN_PIECE_HEIGHT = 0.75
# A cut may drift up to PATH_BAND line heights from its starting column; each column of drift costs
# DRIFT_COST, against 1 for each ink pixel cut through.
PATH_BAND = 0.2
DRIFT_COST = 0.05
# Components with less than this share of the largest one's area do not set the line's height.
LINE_COMPONENT_SHARE = 0.15
# A line in which the not-a-digit check refuses more than this share of the pieces is a drawing, not a number:
# its remaining pieces are parts of the drawing that happen to pass the check. Of 100 rows of three letters,
# symbols and doodles (`python scripts/non_numbers.py`), 41 gave a number without this rule and 14 with it; a
# sign beside a digit ("-5", "$7") keeps its digit, as only half its pieces are refused.
MOSTLY_NOT_DIGITS = 0.5


@dataclass
class Segment:
    """One digit's place in the image: its box (in displayed-image pixels) and its 28x28 model input."""

    box: tuple[int, int, int, int]
    model_input: np.ndarray


@dataclass(frozen=True)
class NumberDigit:
    """One digit of a number as a model reads it, and where it stands in the image."""

    digit: int
    confidence: float
    box: tuple[int, int, int, int]
    # A piece the not-a-digit check refused (a dash, a comma, a currency sign): ``digit`` is only its closest
    # digit, and the piece is left out of the number.
    not_a_digit: bool = False

    @property
    def low_confidence(self) -> bool:
        return is_low_confidence(self.confidence)

    def to_json(self) -> dict[str, Any]:
        answer = {
            "digit": None if self.not_a_digit else self.digit,
            "confidence": self.confidence,
            "low_confidence": self.low_confidence,
            "box": list(self.box),
            "not_a_digit": self.not_a_digit,
        }
        return {**answer, "closest": self.digit} if self.not_a_digit else answer


@dataclass
class NumberReading:
    """One model's reading of a whole number, digit by digit."""

    model: str
    number: str
    digits: list[NumberDigit] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The reading as ``predict --multi --json`` prints it."""
        return {"model": self.model, "number": self.number, "digits": [digit.to_json() for digit in self.digits]}


def displayed_gray(source: str | os.PathLike | bytes | Image.Image | np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The luminance of the source and the (width, height) of the image as displayed."""
    if isinstance(source, np.ndarray):
        gray = array_to_gray(source)
        return gray, (gray.shape[1], gray.shape[0])
    image = load_image(source)
    scale = image.info.get(DECODED_SCALE, 1.0)
    return to_grayscale(image), (round(image.size[0] * scale), round(image.size[1] * scale))


def line_height(heights: np.ndarray, areas: np.ndarray) -> float:
    """The height of the digits in the line: the tallest of the substantial components, robustly."""
    substantial = heights[areas >= LINE_COMPONENT_SHARE * areas.max()]
    return float(np.percentile(substantial, 75))


def group_components(boxes: list[tuple[slice, slice]], areas: np.ndarray) -> np.ndarray:
    """The digit (a group number) each component belongs to; -1 for stray marks that belong to none.

    Components at least :data:`FRAGMENT_HEIGHT` of the line's height, or
    with a sizeable share of a digit's ink, are a digit's main strokes; those
    sharing most of their columns are one digit (a broken stroke, a 4
    written in two strokes). A smaller fragment (the bar of a 5 or a 7, a
    broken-off tail) joins the main component whose columns it shares most,
    or failing that the nearest one within :data:`FRAGMENT_REACH` line
    heights; a fragment with no main component in reach is a stray mark.
    """
    count = len(boxes)
    tops = np.array([box[0].start for box in boxes])
    bottoms = np.array([box[0].stop for box in boxes])
    lefts = np.array([box[1].start for box in boxes])
    rights = np.array([box[1].stop for box in boxes])
    widths, heights = rights - lefts, bottoms - tops
    height = line_height(heights, areas)
    tall = heights >= FRAGMENT_HEIGHT * height
    main = tall | (areas >= FRAGMENT_AREA * np.median(areas[tall]))
    overlap = np.minimum(rights[:, None], rights[None, :]) - np.maximum(lefts[:, None], lefts[None, :])
    narrower = np.minimum(widths[:, None], widths[None, :])
    linked = (overlap >= COLUMN_OVERLAP * narrower) & main[:, None] & main[None, :] & ~np.eye(count, dtype=bool)
    main_indices = np.flatnonzero(main)
    stray = np.zeros(count, dtype=bool)
    for fragment in np.flatnonzero(~main):
        shared = overlap[fragment, main_indices]
        if shared.max() > 0 or -shared.max() <= FRAGMENT_REACH * height:
            partner = main_indices[int(np.argmax(shared))]
        else:
            stray[fragment] = True
            continue
        linked[fragment, partner] = linked[partner, fragment] = True
    _, membership = connected_components(csr_matrix(linked), directed=False)
    return np.where(stray, -1, membership)


def candidate_cuts(mask: np.ndarray, height: float) -> list[int]:
    """Columns of a group's mask where touching digits may be separated: the clearest ink valleys.

    Columns are ranked by how little ink they hold (lightly smoothed), only
    local minima count, and pieces narrower than :data:`MIN_PIECE_WIDTH` of
    the line's height are not allowed.
    """
    width = mask.shape[1]
    margin = max(1, int(MIN_PIECE_WIDTH * height))
    if width <= 2 * margin:
        return []
    profile = ndimage.uniform_filter1d(mask.sum(axis=0).astype(np.float32), size=3)
    columns = np.arange(margin, width - margin)
    values = profile[columns]
    is_minimum = (values <= profile[columns - 1]) & (values <= profile[columns + 1])
    minima = columns[is_minimum]
    ranked = minima[np.argsort(profile[minima], kind="stable")]
    chosen: list[int] = []
    for column in ranked:
        if all(abs(int(column) - other) > margin for other in chosen):
            chosen.append(int(column))
        if len(chosen) == CUT_CANDIDATES:
            break
    return chosen


def cut_path(mask: np.ndarray, column: int, offset: int, band: int) -> np.ndarray:
    """The column of a top-to-bottom cut through as little ink as possible, for every row of the image.

    The cut starts anywhere near ``column`` (an image column; ``mask`` is the
    group's box starting at image column ``offset``), may drift one column
    per row, and stays within ``band`` columns of its start, so it follows
    the gap between slanted or slightly overlapping digits instead of a
    straight line. Found by dynamic programming over the rows.
    """
    first = max(0, column - offset - band)
    last = min(mask.shape[1], column - offset + band + 1)
    cost = mask[:, first:last].astype(np.float32)
    total = cost[0].copy()
    steps = np.zeros(cost.shape, dtype=np.int8)
    for row in range(1, cost.shape[0]):
        left_move = np.concatenate([[np.inf], total[:-1]]) + DRIFT_COST
        right_move = np.concatenate([total[1:], [np.inf]]) + DRIFT_COST
        options = np.stack([left_move, total, right_move])
        choice = np.argmin(options, axis=0)
        steps[row] = choice - 1
        total = options[choice, np.arange(total.size)] + cost[row]
    position = int(np.argmin(total + DRIFT_COST * np.abs(np.arange(total.size) - (column - offset - first))))
    path = np.empty(cost.shape[0], dtype=np.intp)
    for row in range(cost.shape[0] - 1, -1, -1):
        path[row] = position
        position += int(steps[row, position])
    return path + first + offset


def digit_input(ink: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The 28x28 model input for the ink inside ``region`` (a mask over the whole image).

    The faint rim around the region's strokes comes along, but no stroke
    pixel of a neighbouring digit does.
    """
    rim = ndimage.binary_dilation(region, iterations=2) & ~(ink_mask(ink) & ~region)
    # A cut leaves thin stubs, which widening would turn into strokes; the cut evidence (SPLIT_WEIGHTS) was
    # fitted on pieces without it, and with it 2.5 % fewer composed numbers were read exactly.
    return digit_to_mnist(crop_to_ink(np.where(rim, ink, 0.0).astype(np.float32)), keep_thin_parts=False)


def logit(probability: float) -> float:
    """Log-odds, with the probability kept a float32 step away from 0 and 1."""
    clipped = min(max(probability, 1e-7), 1 - 1e-7)
    return float(np.log(clipped / (1 - clipped)))


@dataclass
class Cut:
    """A region cut in two: the left and right pieces and the cut's column in every row of the image."""

    left: np.ndarray
    right: np.ndarray
    boundary: np.ndarray


def candidate_pieces(region: np.ndarray, height: float) -> list[Cut]:
    """The cuts worth judging: from each of :func:`candidate_cuts`, one along :func:`cut_path` and one straight down.

    Both pieces must span most of the line's height (:func:`_spans_line`).
    """
    columns = np.flatnonzero(region.any(axis=0))
    left, right = int(columns[0]), int(columns[-1]) + 1
    column_index = np.arange(region.shape[1])[None, :]
    cuts = []
    for cut in candidate_cuts(region[:, left:right], height):
        path = cut_path(region[:, left:right], left + cut, left, max(1, round(PATH_BAND * height)))
        for boundary in (path, np.full(region.shape[0], left + cut)):
            left_part = region & (column_index < boundary[:, None])
            right_part = region & ~left_part
            if _spans_line(left_part, height) and _spans_line(right_part, height):
                cuts.append(Cut(left_part, right_part, boundary))
    return cuts


def cut_crossing(region: np.ndarray, boundary: np.ndarray) -> tuple[int, int]:
    """How many rows of ink a cut goes through, and how many separate strokes those rows make.

    Touching digits meet in one short junction; a cut through one wide digit,
    such as a 0 halved, crosses two strokes.
    """
    rows = np.arange(region.shape[0])
    last = region.shape[1] - 1
    on_cut = region[rows, np.clip(boundary, 0, last)] | region[rows, np.clip(boundary - 1, 0, last)]
    strokes = int(on_cut[0]) + int((np.diff(on_cut.astype(np.int8)) == 1).sum())
    return int(on_cut.sum()), strokes


def split_features(
    ink: np.ndarray, region: np.ndarray, height: float, judge: Predictor, splitter: SplitNetwork | None = None
) -> tuple[np.ndarray, Cut] | None:
    """What :func:`split_evidence` weighs for a region and its most convincing cut; None without any cut.

    The features, in the order of :data:`SPLIT_WEIGHTS`: the region's width
    in line heights; the model's confidence in the whole region and in the
    weaker and the stronger piece (as log-odds); the ink rows the cut goes
    through, in line heights; the strokes it crosses; and the ink in the
    cut's column against the region's median column; and, with a
    ``splitter``, its log-odds that the region holds several digits. The
    most convincing cut is the one whose weaker piece the model reads most
    confidently. A cut leaving a piece with too little ink to read is not a cut.
    """
    cuts, piece_inputs = [], []
    for cut in candidate_pieces(region, height):
        try:
            pair = [digit_input(ink, cut.left), digit_input(ink, cut.right)]
        except NoDigitFoundError:
            continue
        cuts.append(cut)
        piece_inputs.extend(pair)
    if not cuts:
        return None
    whole = digit_input(ink, region)
    confidence = judge.predict_proba(np.stack([whole, *piece_inputs])).max(axis=1)
    pairs = confidence[1:].reshape(-1, 2)
    best = int(np.argmax(pairs.min(axis=1)))
    cut = cuts[best]
    columns = np.flatnonzero(region.any(axis=0))
    profile = region[:, columns[0] : columns[-1] + 1].sum(axis=0)
    crossed_rows, strokes = cut_crossing(region, cut.boundary)
    valley = region[:, int(np.median(cut.boundary))].sum() / max(1.0, float(np.median(profile)))
    features = np.array(
        [
            (columns[-1] - columns[0] + 1) / height,
            logit(float(confidence[0])),
            logit(float(pairs[best].min())),
            logit(float(pairs[best].max())),
            crossed_rows / height,
            strokes,
            valley,
        ]
    )
    if splitter is not None:
        # Through a probability, so the network's log-odds are kept within the same bounds as the others.
        several = logit(float(expit(splitter.score(whole[None])[0])))
        features = np.append(features, several)
    return features, cut


def split_wide(
    ink: np.ndarray, region: np.ndarray, height: float, judge: Predictor, splitter: SplitNetwork | None = None
) -> list[np.ndarray]:
    """Cut a region holding touching digits into pieces, recursively, where the evidence says two digits.

    Regions narrower than :data:`MAYBE_SEVERAL` line heights stay whole. For
    wider ones the most convincing cut (:func:`split_features`) is weighed
    against keeping the region whole by :func:`split_evidence`; regions wider
    than :data:`SURELY_SEVERAL` are cut whenever a cut exists.
    """
    columns = np.flatnonzero(region.any(axis=0))
    aspect = (columns[-1] - columns[0] + 1) / height
    if aspect <= MAYBE_SEVERAL:
        return [region]
    judged = split_features(ink, region, height, judge, splitter)
    if judged is None:
        return [region]
    features, cut = judged
    if aspect <= SURELY_SEVERAL and split_evidence(features) <= 0:
        return [region]
    return split_wide(ink, cut.left, height, judge, splitter) + split_wide(ink, cut.right, height, judge, splitter)


def split_evidence(features: np.ndarray) -> float:
    """Positive when a region more likely holds two touching digits than one wide digit.

    A logistic score over :func:`split_features`: :data:`SPLIT_WEIGHTS` when
    they include the split network's log-odds, else
    :data:`SPLIT_WEIGHTS_WITHOUT_NETWORK`. The weights were fitted on numbers
    composed from MNIST training digits
    (:func:`digitlab.checks.realworld.generate_numbers`, seeds 1 and 2).
    """
    weights = {
        len(SPLIT_WEIGHTS) - 1: SPLIT_WEIGHTS,
        len(SPLIT_WEIGHTS_WITHOUT_NETWORK) - 1: SPLIT_WEIGHTS_WITHOUT_NETWORK,
    }
    if len(features) not in weights:
        raise ValueError(f"split_evidence weighs {sorted(weights)} features, not {len(features)}.")
    chosen = weights[len(features)]
    return float(np.dot(chosen[:-1], features) + chosen[-1])


def _spans_line(piece: np.ndarray, height: float) -> bool:
    """Whether a piece is tall enough to be a digit, unlike the bar of a 7 cut from its stem."""
    rows = np.flatnonzero(piece.any(axis=1))
    return rows.size > 0 and rows[-1] - rows[0] + 1 >= MIN_PIECE_HEIGHT * height


def segment_digits(
    source: str | os.PathLike | bytes | Image.Image | np.ndarray,
    judge: Predictor,
    splitter: SplitNetwork | None = None,
) -> list[Segment]:
    """The digits of a number in the image, left to right, each with its box and 28x28 model input.

    ``judge`` is the model whose confidence decides where touching digits are
    cut, with the ``splitter``'s opinion when there is one.
    """
    gray, size = displayed_gray(source)
    return segment_ink(number_ink(gray), size, judge, splitter)


def number_ink(gray: np.ndarray) -> np.ndarray:
    """The image cleaned for reading a number: as for one digit (:func:`clean_ink`), a short line enlarged first."""
    return clean_ink(gray, enlarge=enlarge_short_line)


def segment_ink(
    ink: np.ndarray, size: tuple[int, int], judge: Predictor, splitter: SplitNetwork | None = None
) -> list[Segment]:
    """:func:`segment_digits` for an image already cleaned by :func:`number_ink`, displayed at ``size`` (width, height).

    Faint ridges that smooth gray noise leaves after cleaning are refused as
    they are for one digit (:func:`reject_soft_marks`); cut up, they read as a row of 1s.
    """
    labels, areas = ink_components(ink)
    if areas.size == 0:
        raise NoDigitFoundError("No digit found: the image holds no ink.")
    reject_soft_marks(ink)
    boxes = ndimage.find_objects(labels)
    heights = np.array([box[0].stop - box[0].start for box in boxes])
    digit_height = line_height(heights, areas)
    # Label 0 is the background; it maps to -1 like stray marks, so no group contains it.
    group_of_label = np.concatenate([[-1], group_components(boxes, areas)])
    groups = group_of_label[labels]
    if group_of_label.max() < 0:
        raise NoDigitFoundError("No digit found: the image holds only small marks.")
    regions = []
    # Stray marks leave their group numbers unused, so only the numbers still in use are visited.
    for group in np.unique(group_of_label[group_of_label >= 0]):
        regions.extend(split_wide(ink, groups == group, digit_height, judge, splitter))
    scale_x, scale_y = size[0] / ink.shape[1], size[1] / ink.shape[0]
    segments = []
    for region in regions:
        rows, columns = np.nonzero(region)
        top, left = int(rows.min()), int(columns.min())
        bottom, right = int(rows.max()) + 1, int(columns.max()) + 1
        box = (
            int(np.floor(left * scale_x)),
            int(np.floor(top * scale_y)),
            max(1, int(np.ceil((right - left) * scale_x))),
            max(1, int(np.ceil((bottom - top) * scale_y))),
        )
        segments.append(Segment(box, digit_input(ink, region)))
    return sorted(segments, key=lambda segment: segment.box[0] + segment.box[2] / 2)


def read_number(
    source: str | os.PathLike | bytes | Image.Image | np.ndarray,
    models: Mapping[str, Predictor],
    screen: ScreenedDetector | None = None,
    splitter: SplitNetwork | None = None,
) -> tuple[list[Segment], list[NumberReading]]:
    """Segment the image once and let every model read each digit; the first model decides the cuts.

    Returns the segments (boxes and model inputs) and one :class:`NumberReading`
    per model. With a not-a-digit ``screen``, pieces it refuses are marked and left out of the number;
    with a ``splitter``, its opinion helps decide the cuts.
    """
    if not models:
        raise ValueError("read_number needs at least one model.")
    segments = segment_digits(source, next(iter(models.values())), splitter)
    return segments, read_segments(segments, models, digit_like(segments, screen))


def digit_like(segments: list[Segment], screen: ScreenedDetector | None) -> list[bool] | None:
    """Whether each segmented piece counts as a digit; None (every piece counts) without a screen.

    A piece counts when the screen takes it for a digit, unless the screen
    refuses more than :data:`MOSTLY_NOT_DIGITS` of the line's pieces: then none does.
    """
    if screen is None or not segments:
        return None
    verdicts = [
        verdict.is_digit for verdict in screen.verdicts(np.stack([segment.model_input for segment in segments]))
    ]
    if verdicts.count(False) > MOSTLY_NOT_DIGITS * len(verdicts):
        return [False] * len(verdicts)
    return verdicts


def read_segments(
    segments: list[Segment], models: Mapping[str, Predictor], is_digit: Sequence[bool] | None = None
) -> list[NumberReading]:
    """Every model's reading of the segmented digits, as one number per model.

    Pieces whose ``is_digit`` is False are kept in the reading, marked, but
    not in the number; a number of such pieces alone is empty.
    """
    inputs = np.stack([segment.model_input for segment in segments])
    kept = [True] * len(segments) if is_digit is None else list(is_digit)
    readings = []
    for name, model in models.items():
        # Each piece is read once, at the size segmentation made it: read also at 85 % as single drawings are
        # (digitlab.imaging.sizes), the CNN read fewer of realworld's numbers on development seeds 5 and 6 (94.0 and
        # 93.0 % of 200 against 95.0 and 94.5 %).
        probabilities = model.predict_proba(inputs)
        digits = []
        for segment, row, digit_like in zip(segments, probabilities, kept, strict=True):
            digit = int(np.argmax(row))
            digits.append(NumberDigit(digit, round(float(row[digit]), 6), tuple(segment.box), not digit_like))
        number = "".join(str(entry.digit) for entry in digits if not entry.not_a_digit)
        readings.append(NumberReading(name, number, digits))
    return readings
