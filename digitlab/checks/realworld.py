"""A validation set that looks like what users upload, made from MNIST training digits and drawn strokes.

MNIST's test accuracy says little about a photo of a digit on paper or a
finger drawing on a phone. This module re-renders MNIST *training* digits
(only ones the evaluated model never fitted on, found from its manifest entry
by :func:`held_out_pool`) with :mod:`digitlab.imaging.renderings` as six kinds
of real-world input, each an ordinary image file at its own size and polarity:
``envelope-scan`` (12-24 pixel grayscale postal scans), ``binarised-form``
(black-and-white form scans, some stretched to 16x16), ``canvas-drawing``
(drawing apps, a pen from hair-thin to finger-thick), ``phone-photo`` (pen on
paper under uneven light, JPEG), ``thin-pen`` (a 1-3 pixel stylus on a large
canvas) and ``thick-pen`` (a finger or a marker).

:func:`generate_uci` adds real handwriting, scikit-learn's copy of the UCI
digits (``uci-8x8-scan``: 8x8 gray scans written by other people than
MNIST's, saved at 8, 16 or 32 pixels). Beside them, :func:`generate_drawn`
adds digits drawn from single-stroke fonts
in the styles MNIST has few of (``writing-styles``: closed 4s, 1s with a flag,
7s with a bar) and drawings that are not digits (``letters``, ``symbols``,
``doodles``), all from fonts the not-a-digit detector never trained on.

Each sample records its conditions (size, pen, polarity...) so mistakes can
be traced. :func:`evaluate` runs every sample through the same path as
``python -m digitlab predict`` (``load_image``, ``preprocess``, the model, the
not-a-digit check) and, for comparison, through a naive plain resize to 28x28.
:func:`generate_numbers` composes multi-digit numbers from the same digits for
:func:`digitlab.imaging.segment.read_number`, :func:`scanned_small` shrinks them as small scans and
:func:`drawn_numbers` redraws them with a pen on a drawing app's canvas. :func:`write_realworld_record` keeps
every model's figures in the models folder's ``realworld.json``, from which the README's table is written
(:func:`realworld_table`).
"""

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from digitlab.atomic import write_json_atomically
from digitlab.clock import utc_timestamp
from digitlab.data import synthetic
from digitlab.data.mnist import IMAGE_SHAPE, TRAIN_IMAGES, data_checksum, load_mnist
from digitlab.data.uci import uci_digits
from digitlab.errors import DigitlabError
from digitlab.formatting import markdown_table
from digitlab.imaging.decode import resize
from digitlab.imaging.preprocess import preprocess
from digitlab.imaging.renderings import (
    CANVAS_PEN_SHARE,
    RENDERERS,
    Rendering,
    canvas_export,
    digit_crop,
    encode,
    fitted_size,
    pen_shape,
    place,
    round_pen_width,
    scanned_shape,
    to_uint8,
)
from digitlab.imaging.segment import read_number
from digitlab.imaging.sizes import reading_probabilities
from digitlab.manifest import ModelEntry
from digitlab.models.base import LOW_CONFIDENCE, DigitClassifier, validation_split
from digitlab.models.detector import ScreenedDetector
from digitlab.models.registry import REGISTRY
from digitlab.models.splitter import SplitNetwork

# Renderings of held-out MNIST digits.
SOURCES = ("envelope-scan", "binarised-form", "canvas-drawing", "phone-photo", "thin-pen", "thick-pen")
# Digits drawn from fonts the not-a-digit detector never saw, in the styles MNIST has few of (closed 4s, 1s with a
# flag, 7s with a bar), and drawings that are not digits at all, from the same fonts and the doodle makers.
STYLE_SOURCE = "writing-styles"
# Real handwriting: the UCI digits, each saved with square pixels 1, 2 or 4 times its 8x8 size.
UCI_SOURCE = "uci-8x8-scan"
UCI_SCALES = (1, 2, 4)
NON_DIGIT_SOURCES = ("letters", "symbols", "doodles")
NOT_A_DIGIT = -1
# The record of every model's figures that the README's table is written from, in the models folder.
REALWORLD_NAME = "realworld.json"
# The same composed numbers scanned small: each shrunk so its digits are between these heights in pixels, as a row of
# 16x16 form digits or of envelope digits is.
SMALL_DIGIT_HEIGHTS = (12, 20)
# The same numbers drawn on a canvas (draw_number): digits this many pixels tall, as on the Draw page's number strip.
DRAWN_DIGIT_HEIGHTS = (40, 200)
# Mixed into the seed of the drawn numbers, so they draw their pens and gaps from a stream of their own.
DRAWN_NUMBERS_SEED_BASE = 17
# Composed numbers read for the record, and the command that writes it.
RECORD_NUMBERS = 200
RECORD_COMMAND = f"python -m digitlab realworld --model all --numbers {RECORD_NUMBERS} --record"
# Above the table: the headline figures come from samples, and their brackets say how far chance alone moves them.
INTERVAL_NOTE = "In brackets: the 95 % (Wilson) interval that the size of its sample leaves a headline figure."
# The figures of evaluate_numbers (with the same numbers scanned small and drawn on a canvas), how both the command's
# number table and the README's table name them, and whether the README gives the figure with its interval (the
# headline ones, numbers read exactly).
NUMBER_FIGURES = (
    ("exact", "4-digit numbers read exactly right", True),
    (
        "small_exact",
        "numbers scanned small (digits {}-{} pixels tall): read exactly right".format(*SMALL_DIGIT_HEIGHTS),
        True,
    ),
    ("drawn_exact", "numbers drawn on a canvas with one round pen: read exactly right", True),
    ("alone_exact", "numbers: every digit read right from its own MNIST image, unsegmented", False),
    ("right_digit_count", "numbers: right count of digits found", False),
    ("digit_accuracy", "numbers: digits read right (a wrongly split number's digits count as wrong)", False),
    ("refused_digits", "numbers: digits refused as not a digit (left out of the number)", False),
)
# Mixed into the seeds of the drawn samples, so they are not the drawings the detector was trained or set with.
DRAWN_SEED_BASE = 16
# The split the families' default hyperparameters hold out (the shipped models use it). Evaluation never
# assumes it: a promoted run may have trained on another split, so run_realworld asks held_out_pool instead.
HELD_OUT_SIZE = 5000
HELD_OUT_SEED = 0
DEFAULT_COUNT = 250


@dataclass(frozen=True)
class Sample:
    """One validation image: the encoded file, its true digit and the kind of source it imitates."""

    source: str
    label: int
    payload: bytes
    suffix: str
    mnist_index: int
    conditions: tuple[str, ...] = ()


def held_out_indices(count: int = TRAIN_IMAGES) -> np.ndarray:
    """The validation part of the families' default split (5,000 images, seed 0), which the shipped models hold out.

    Only for callers that know they use the shipped models; :func:`held_out_pool` finds any model's own.
    """
    return validation_split(count, HELD_OUT_SIZE, HELD_OUT_SEED)[1]


def recorded_split(name: str, entry: ModelEntry) -> tuple[int, int, str, int, int]:
    """``(seed, train_size, train_data_sha256, validation_size, split_seed)`` from a manifest entry, or a refusal."""
    # The split is the family's own hyperparameters, named as its get_params names them.
    hyperparameters = entry.hyperparameters or {}
    fields = {
        "seed": entry.seed,
        "train_size": entry.train_size,
        "train_data_sha256": entry.train_data_sha256,
        "hyperparameters.validation_size": hyperparameters.get("validation_size"),
        "hyperparameters.seed": hyperparameters.get("seed"),
    }
    missing = [field for field, value in fields.items() if value is None]
    if missing:
        raise DigitlabError(
            f"The manifest entry for {name} does not record {', '.join(missing)}, so which MNIST training images "
            f"it never trained on cannot be told; retrain it with 'python -m digitlab train --model {name}' "
            "before evaluating it on held-out digits."
        )
    return (
        int(fields["seed"]),
        int(fields["train_size"]),
        str(fields["train_data_sha256"]),
        int(fields["hyperparameters.validation_size"]),
        int(fields["hyperparameters.seed"]),
    )


def training_indices(name: str, entry: ModelEntry, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The indices into the MNIST training ``images`` that training gave the model, checked against its checksum.

    Training draws ``train_size`` images with the entry's seed (all of them at the full size) and records the
    checksum of exactly what it trained on, saved drawings included. A checksum that the drawn images do not
    reproduce means the model saw other data, whose MNIST part cannot be told apart, so it is refused.
    """
    from digitlab.training import training_subset

    seed, train_size, checksum, _, _ = recorded_split(name, entry)
    everything = np.arange(len(images))
    unknown = DigitlabError(
        f"{name} was not trained on the MNIST training set alone ({train_size:,} images with seed {seed} do not "
        "match its recorded training-data checksum: it also trained on saved drawings, or on another copy of "
        "MNIST), so the MNIST digits it never saw cannot be told; evaluate a model trained on MNIST alone."
    )
    if train_size > len(images):
        raise unknown
    try:
        # The training code's own draw, applied to the indices instead of the images.
        subset = training_subset(everything, everything, train_size, seed)[0]
    except ValueError as error:
        raise unknown from error
    if data_checksum(images[subset], labels[subset]) != checksum:
        raise unknown
    return subset


def unseen_indices(name: str, entry: ModelEntry, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The MNIST training indices one model never fitted on, from its manifest entry alone (not its members).

    The family splits the images training gave it with ``validation_split`` over their positions and fits on
    the training part; so both its validation part and every image outside a smaller training subset are unseen.
    """
    _, _, _, validation_size, split_seed = recorded_split(name, entry)
    subset = training_indices(name, entry, images, labels)
    fit_positions = validation_split(len(subset), validation_size, split_seed)[0]
    return np.setdiff1d(np.arange(len(images)), subset[fit_positions])


def member_names(name: str, entry: ModelEntry) -> tuple[str, ...]:
    """The models whose votes ``name`` combines: those its family always uses, and those older manifest entries
    recorded among their hyperparameters."""
    family = REGISTRY[name].members if name in REGISTRY else ()
    return tuple(dict.fromkeys([*entry.members, *family]))


def held_out_pool(entries: Mapping[str, ModelEntry], name: str, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The sorted MNIST training indices that model ``name``, and every model it votes with, never fitted on.

    ``entries`` is a manifest's ``models`` table and ``images``/``labels`` the MNIST training set. An ensemble
    fits its own networks on its own split and votes with members fitted on theirs, so its pool is the
    intersection of them all. A model whose entry cannot tell which images it fitted on is refused.
    """
    entry = entries.get(name)
    if entry is None:
        raise DigitlabError(
            f"The manifest has no entry for {name}, so which MNIST training images it never trained on cannot "
            f"be told; train it with 'python -m digitlab train --model {name}'."
        )
    pool = unseen_indices(name, entry, images, labels)
    for member in member_names(name, entry):
        pool = np.intersect1d(pool, held_out_pool(entries, member, images, labels))
    if len(pool) == 0:
        raise DigitlabError(
            f"{name} and the models it votes with have together fitted on every MNIST training image, so there "
            "are no unseen digits to evaluate it on; retrain them on the same held-out split."
        )
    return pool


def checked_pool(pool: np.ndarray, images: np.ndarray) -> np.ndarray:
    """``pool`` as indices into ``images``, refused when empty or out of range."""
    pool = np.asarray(pool)
    if pool.ndim != 1 or len(pool) == 0 or not np.issubdtype(pool.dtype, np.integer):
        raise ValueError("pool must be a non-empty list of indices into the training images.")
    if pool.min() < 0 or pool.max() >= len(images):
        raise ValueError(f"pool holds indices outside the {len(images):,} training images.")
    return pool


def generate(
    images: np.ndarray, labels: np.ndarray, count: int = DEFAULT_COUNT, seed: int = 0, *, pool: np.ndarray
) -> list[Sample]:
    """``count`` samples of every source from MNIST training ``images``, reproducible for a ``seed``.

    Digits are drawn from ``pool``, the indices the evaluated model never
    fitted on (:func:`held_out_pool`), without repetition while there are
    enough of them.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}.")
    pool = checked_pool(pool, images)
    rng = np.random.default_rng(seed)
    total = count * len(SOURCES)
    chosen = rng.choice(pool, total, replace=total > len(pool))
    samples = []
    for position, index in enumerate(chosen):
        source = SOURCES[position % len(SOURCES)]
        rendering = RENDERERS[source](images[index], rng)
        payload = encode(rendering.image, rendering.suffix)
        samples.append(Sample(source, int(labels[index]), payload, rendering.suffix, int(index), rendering.conditions))
    return samples


def generate_uci(count: int, seed: int) -> list[Sample]:
    """``count`` real handwritten digits from the UCI set (:mod:`digitlab.data.uci`), reproducible for a ``seed``.

    Each is saved as a PNG with square pixels at 8, 16 or 32 pixels, as a
    coarse form scanner gives it, dark on light or light on dark. The set
    holds 1,797 digits, so a larger ``count`` repeats some of them.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}.")
    images, labels = uci_digits()
    rng = np.random.default_rng(seed)
    samples = []
    for index in rng.choice(len(images), count, replace=count > len(images)):
        scale = int(rng.choice(UCI_SCALES))
        ink = np.kron(images[index], np.ones((scale, scale), dtype=np.uint8))
        dark_on_light = rng.random() < 0.5
        pixels = 255 - ink if dark_on_light else ink
        conditions = (f"{ink.shape[1]}x{ink.shape[0]}px", "dark on light" if dark_on_light else "light on dark")
        payload = encode(Image.fromarray(pixels), ".png")
        samples.append(Sample(UCI_SOURCE, int(labels[index]), payload, ".png", -1, conditions))
    return samples


def generate_drawn(count: int, seed: int) -> list[Sample]:
    """``count`` font-drawn digits in the writing styles and ``count`` drawings of each non-digit kind.

    All come from :data:`synthetic.VALIDATION_FONTS`, which the not-a-digit
    detector never trained on, and are saved as a drawing app would save them.
    """
    # Streams of their own, which never meet the seeds the detector trained (1) and set its threshold (2) with.
    export_seed, digit_seed, drawing_seed = np.random.SeedSequence([DRAWN_SEED_BASE, seed]).spawn(3)
    rng = np.random.default_rng(export_seed)
    samples = []
    for label, ink in synthetic.digit_drawings(synthetic.VALIDATION_FONTS, count, digit_seed):
        rendering = canvas_export(ink, rng, (f"{ink.shape[1]}x{ink.shape[0]}px",))
        payload = encode(rendering.image, rendering.suffix)
        samples.append(Sample(STYLE_SOURCE, label, payload, rendering.suffix, -1, rendering.conditions))
    drawings = synthetic.non_digit_drawings(synthetic.VALIDATION_FONTS, count * len(NON_DIGIT_SOURCES), drawing_seed)
    for drawing in drawings:
        rendering = canvas_export(drawing.image, rng, (drawing.name, f"{drawing.image.shape[0]}px"))
        payload = encode(rendering.image, rendering.suffix)
        source = f"{drawing.kind}s"
        samples.append(Sample(source, NOT_A_DIGIT, payload, rendering.suffix, -1, rendering.conditions))
    return samples


def compose_number(digits: np.ndarray, rng: np.random.Generator) -> tuple[Rendering, list[tuple[int, int, int, int]]]:
    """Several MNIST digits written side by side as one number, as on a form or a cheque.

    Each digit is scaled by up to 15 % and laid out by :func:`side_by_side`,
    so some touch or overlap slightly. The line is
    enlarged two to four times and shown white on black or dark on light
    paper, with a little blur and noise. Returns the rendering and each
    digit's box ``(x, y, width, height)`` in the image's pixels.
    """
    crops = [digit_crop(digit) for digit in digits]
    scales = rng.uniform(0.85, 1.15, len(crops))
    shapes = [
        resize(crop, fitted_size(crop, max(8, round(20 * scale)))) for crop, scale in zip(crops, scales, strict=True)
    ]
    line, lefts, tops, touching = side_by_side(shapes, rng, unit=1.0)
    enlarge = float(rng.uniform(2, 4))
    size = (round(line.shape[1] * enlarge), round(line.shape[0] * enlarge))
    ink = ndimage.gaussian_filter(scanned_shape(line, size), rng.uniform(0.3, 1.0))
    values = ink + rng.normal(0.0, rng.uniform(0.0, 0.03), ink.shape)
    dark_on_light = rng.random() < 0.6
    if dark_on_light:
        values = rng.uniform(0.8, 1.0) - values * rng.uniform(0.6, 0.8)
    conditions = (
        f"{size[0]}x{size[1]}px",
        "dark on light" if dark_on_light else "light on dark",
        f"touching gaps {touching}",
    )
    boxes = [
        (round(left * enlarge), round(top * enlarge), round(shape.shape[1] * enlarge), round(shape.shape[0] * enlarge))
        for shape, top, left in zip(shapes, tops, lefts, strict=True)
    ]
    return Rendering(Image.fromarray(to_uint8(values)), ".png", conditions), boxes


def side_by_side(
    shapes: list[np.ndarray], rng: np.random.Generator, *, unit: float
) -> tuple[np.ndarray, list[int], list[int], int]:
    """Digit shapes placed left to right on one line, white on black: the line, each shape's left and top, and how
    many neighbours touch or overlap (a gap of at most half a unit).

    ``unit`` is an MNIST pixel (a 20-pixel-tall digit's twentieth) in the shapes' pixels. The gaps between
    digits are random, two to eight units, and a fifth are zero or negative, so those digits touch or overlap
    slightly; each digit is shifted up or down by up to two units within a band 24 units tall.
    """
    gaps = np.where(rng.random(len(shapes)) < 0.2, rng.uniform(-1.5, 0.5, len(shapes)), rng.uniform(2, 8, len(shapes)))
    margin, band = round(6 * unit), round(24 * unit)
    lefts, position = [], float(margin)
    for shape, gap in zip(shapes, gaps, strict=True):
        lefts.append(round(position))
        position += shape.shape[1] + gap * unit
    tops = [margin + round(rng.uniform(-2, 2) * unit) + (band - shape.shape[0]) // 2 for shape in shapes]
    line = np.zeros((band + 2 * margin, round(position) + margin), dtype=np.float32)
    for shape, top, left in zip(shapes, tops, lefts, strict=True):
        line = np.maximum(line, place(shape, (line.shape[1], line.shape[0]), top, left))
    return line, lefts, tops, int((gaps[:-1] <= 0.5).sum())


def draw_number(digits: np.ndarray, rng: np.random.Generator) -> tuple[Rendering, list[tuple[int, int, int, int]]]:
    """Several MNIST digits redrawn side by side with one round pen, saved as a drawing app saves its canvas.

    As a number written on the Draw page's strip: the digits are :data:`DRAWN_DIGIT_HEIGHTS` pixels tall, the pen
    as wide as for a single canvas drawing (:data:`~digitlab.imaging.renderings.CANVAS_PEN_SHARE` of their height),
    laid out as :func:`compose_number` lays out its digits. Returns the rendering and each digit's box.
    """
    height = int(rng.integers(DRAWN_DIGIT_HEIGHTS[0], DRAWN_DIGIT_HEIGHTS[1] + 1))
    pen_width = round_pen_width(height, CANVAS_PEN_SHARE, rng)
    unit = height / 20
    crops = [digit_crop(digit) for digit in digits]
    shapes = [
        pen_shape(crop, fitted_size(crop, max(8, round(height * rng.uniform(0.85, 1.15)))), pen_width) for crop in crops
    ]
    line, lefts, tops, touching = side_by_side(shapes, rng, unit=unit)
    conditions = (
        f"{line.shape[1]}x{line.shape[0]}px",
        f"pen {pen_width:.1f}px, {pen_width / height:.1%} of the height",
        f"touching gaps {touching}",
    )
    boxes = [(left, top, shape.shape[1], shape.shape[0]) for shape, top, left in zip(shapes, tops, lefts, strict=True)]
    return canvas_export(line, rng, conditions), boxes


@dataclass(frozen=True)
class NumberSample:
    """A composed number: the encoded image and the digits it shows, left to right, with their MNIST images."""

    number: str
    payload: bytes
    conditions: tuple[str, ...]
    boxes: tuple[tuple[int, int, int, int], ...]
    # The payload already holds them; they are kept to read each digit alone, without segmentation.
    digit_images: np.ndarray = field(compare=False, repr=False)


def generate_numbers(
    images: np.ndarray,
    labels: np.ndarray,
    count: int = DEFAULT_COUNT,
    length: int = 4,
    seed: int = 0,
    *,
    pool: np.ndarray,
) -> list[NumberSample]:
    """``count`` numbers of ``length`` digits composed from the MNIST training digits in ``pool``."""
    if count < 1 or length < 1:
        raise ValueError(f"count and length must be at least 1, got {count} and {length}.")
    pool = checked_pool(pool, images)
    if len(pool) < length:
        raise ValueError(f"A {length}-digit number needs at least {length} digits in the pool, not {len(pool)}.")
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        chosen = rng.choice(pool, length, replace=False)
        rendering, boxes = compose_number(images[chosen], rng)
        number = "".join(str(int(label)) for label in labels[chosen])
        payload = encode(rendering.image, rendering.suffix)
        samples.append(NumberSample(number, payload, rendering.conditions, tuple(boxes), images[chosen]))
    return samples


def scanned_small(samples: list[NumberSample], seed: int = 0) -> list[NumberSample]:
    """The composed numbers shrunk, each so that its digits are :data:`SMALL_DIGIT_HEIGHTS` pixels tall.

    Averaged down as a scanner at a low resolution would, and saved as PNG; the boxes shrink with the image.
    """
    rng = np.random.default_rng(seed)
    shrunk = []
    for sample in samples:
        image = Image.open(io.BytesIO(sample.payload)).convert("L")
        digit_height = float(np.median([height for _, _, _, height in sample.boxes]))
        factor = min(1.0, rng.uniform(*SMALL_DIGIT_HEIGHTS) / digit_height)
        size = (max(1, round(image.size[0] * factor)), max(1, round(image.size[1] * factor)))
        small = image.resize(size, Image.Resampling.BOX)
        boxes = tuple(tuple(round(value * factor) for value in box) for box in sample.boxes)
        conditions = (*sample.conditions, f"shrunk to {size[0]}x{size[1]}px")
        shrunk.append(NumberSample(sample.number, encode(small, ".png"), conditions, boxes, sample.digit_images))
    return shrunk


def drawn_numbers(samples: list[NumberSample], seed: int = 0) -> list[NumberSample]:
    """The composed numbers' digits redrawn with a pen on a drawing app's canvas (:func:`draw_number`)."""
    # A stream of its own, so the numbers composed with the same seed stay the same.
    rng = np.random.default_rng([DRAWN_NUMBERS_SEED_BASE, seed])
    drawn = []
    for sample in samples:
        rendering, boxes = draw_number(sample.digit_images, rng)
        payload = encode(rendering.image, rendering.suffix)
        drawn.append(NumberSample(sample.number, payload, rendering.conditions, tuple(boxes), sample.digit_images))
    return drawn


def evaluate_numbers(
    samples: list[NumberSample],
    models: dict[str, DigitClassifier],
    screen: ScreenedDetector | None = None,
    splitter: SplitNetwork | None = None,
) -> dict[str, Any]:
    """How many composed numbers ``read_number`` reads exactly right, and how many digits it finds and reads.

    With the not-a-digit ``screen``, as ``predict --multi`` reads numbers, a digit it refuses is left out of the
    number (and counted in ``refused_digits``); with the ``splitter``, it helps decide where touching digits are cut.
    ``alone_exact`` is the share of numbers whose digits the first model reads right as their own MNIST images,
    read once as the pieces are: near enough what a perfect segmentation would give, so ``exact`` short of it
    is what segmentation and the number's rendering cost.
    """
    exact, right_count, digits_right, total_digits, refused, mistakes = 0, 0, 0, 0, 0, []
    for position, sample in enumerate(samples):
        total_digits += len(sample.number)
        try:
            reading = read_number(sample.payload, models, screen, splitter)[1][0]
        except DigitlabError as error:
            mistakes.append({"position": position, "number": sample.number, "read": None, "error": str(error)})
            continue
        number = reading.number
        refused += sum(digit.not_a_digit for digit in reading.digits)
        exact += number == sample.number
        if len(number) == len(sample.number):
            right_count += 1
            digits_right += sum(read == true for read, true in zip(number, sample.number, strict=True))
        if number != sample.number:
            mistakes.append(
                {"position": position, "number": sample.number, "read": number, "conditions": sample.conditions}
            )
    return {
        "numbers": len(samples),
        "exact": exact / len(samples),
        "alone_exact": read_alone_exactly(samples, next(iter(models.values()))),
        "right_digit_count": right_count / len(samples),
        "digit_accuracy": digits_right / total_digits,
        "screened": screen is not None,
        "refused_digits": refused / total_digits,
        "mistakes": mistakes,
    }


def read_alone_exactly(samples: list[NumberSample], model: DigitClassifier) -> float:
    """The share of numbers all of whose digits ``model`` reads right from their own MNIST images."""
    read = model.predict_proba(np.concatenate([sample.digit_images for sample in samples])).argmax(axis=1)
    truth = np.array([int(digit) for sample in samples for digit in sample.number])
    per_number = np.split(read == truth, np.cumsum([len(sample.number) for sample in samples])[:-1])
    return float(np.mean([right.all() for right in per_number]))


def naive_input(payload: bytes) -> np.ndarray:
    """What a typical demo does with an upload: grayscale and a plain resize to 28x28, nothing else."""
    image = Image.open(io.BytesIO(payload)).convert("L")
    return np.asarray(image.resize(IMAGE_SHAPE, Image.Resampling.BILINEAR), dtype=np.uint8)


def model_inputs(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Every sample through ``preprocess`` (a blank input where it is refused), which ones it refused, and why."""
    inputs, refused = [], []
    for position, sample in enumerate(samples):
        try:
            inputs.append(preprocess(sample.payload))
        except DigitlabError as error:
            refused.append({"position": position, "source": sample.source, "error": str(error)})
            inputs.append(np.zeros(IMAGE_SHAPE, dtype=np.uint8))
    refused_mask = np.zeros(len(samples), dtype=bool)
    refused_mask[[entry["position"] for entry in refused]] = True
    return np.stack(inputs), refused_mask, refused


def auroc(digit_scores: np.ndarray, non_digit_scores: np.ndarray) -> float | None:
    """How well a score ranks digits above non-digits (1 is perfect, 0.5 is chance); None without both kinds."""
    if digit_scores.size == 0 or non_digit_scores.size == 0:
        return None
    targets = np.concatenate([np.ones(digit_scores.size), np.zeros(non_digit_scores.size)])
    scores = np.concatenate([digit_scores, non_digit_scores])
    # Images preprocessing refused score minus infinity: below every other, which a finite stand-in keeps.
    finite = scores[np.isfinite(scores)]
    lowest = float(finite.min()) - 1 if finite.size else 0.0
    return float(roc_auc_score(targets, np.nan_to_num(scores, neginf=lowest, posinf=-lowest)))


def evaluate(samples: list[Sample], model: DigitClassifier, detector: ScreenedDetector | None = None) -> dict[str, Any]:
    """Accuracy per digit source, and for drawings that are not digits how many are refused.

    A digit that preprocessing refuses (for instance "no digit found")
    counts as an error and is listed under ``refused``; one the detector
    refuses is read all the same (its closest digit). Both count under
    ``not_a_digit``, the share of digits the user is told are not digits. A
    non-digit is refused when preprocessing or the detector refuses it, and
    read as a confident digit when neither does and
    the model's confidence is above :data:`LOW_CONFIDENCE`.
    """
    inputs, refused_mask, refused = model_inputs(samples)
    naive = np.stack([naive_input(sample.payload) for sample in samples])
    truth = np.array([sample.label for sample in samples])
    probabilities = reading_probabilities(model, inputs)
    predicted = probabilities.argmax(axis=1)
    predicted[refused_mask] = -1
    confidence = np.where(refused_mask, 0.0, probabilities.max(axis=1))
    naive_predicted = model.predict(naive)
    scores = detector.detector.score(inputs) if detector is not None else np.full(len(samples), np.inf)
    scores[refused_mask] = -np.inf
    threshold = detector.record.threshold if detector is not None else -np.inf
    # What the user is told is "no digit found" or "not a digit": either way the image is refused.
    not_a_digit = refused_mask | (scores < threshold)
    sources = np.array([sample.source for sample in samples])
    is_digit = truth != NOT_A_DIGIT
    rows, non_digit_rows = {}, {}
    for source in dict.fromkeys(sample.source for sample in samples):
        chosen = sources == source
        if is_digit[chosen].all():
            rows[source] = {
                "samples": int(chosen.sum()),
                "accuracy": float((predicted[chosen] == truth[chosen]).mean()),
                "naive_accuracy": float((naive_predicted[chosen] == truth[chosen]).mean()),
                "not_a_digit": float(not_a_digit[chosen].mean()),
            }
        else:
            confident = ~refused_mask[chosen] & (confidence[chosen] >= LOW_CONFIDENCE)
            non_digit_rows[source] = {
                "samples": int(chosen.sum()),
                "refused": float(not_a_digit[chosen].mean()),
                "refused_by_preprocessing": float(refused_mask[chosen].mean()),
                "confident_digit": float((confident & ~not_a_digit[chosen]).mean()),
                "confident_digit_without_detector": float(confident.mean()),
            }
    overall = {
        "samples": int(is_digit.sum()),
        "accuracy": float((predicted[is_digit] == truth[is_digit]).mean()),
        "naive_accuracy": float((naive_predicted[is_digit] == truth[is_digit]).mean()),
        "not_a_digit": float(not_a_digit[is_digit].mean()),
    }
    hardest = min(rows, key=lambda source: rows[source]["accuracy"])
    wrong = np.flatnonzero(is_digit & (predicted != truth))
    return {
        "sources": rows,
        "overall": overall,
        "hardest_source": hardest,
        "non_digits": non_digit_rows,
        "detector_auroc": auroc(scores[is_digit], scores[~is_digit]) if detector is not None else None,
        "confidence_auroc": auroc(confidence[is_digit], confidence[~is_digit]),
        "refused": [entry for entry in refused if is_digit[entry["position"]]],
        "mistakes": [
            {
                "position": int(i),
                "source": samples[i].source,
                "conditions": samples[i].conditions,
                "label": int(truth[i]),
                "read": int(predicted[i]),
            }
            for i in wrong
        ],
    }


def save_samples(samples: list[Sample], folder: str | Path) -> list[Path]:
    """Write every sample as an ordinary image file, ``<source>/<number>-digit<label><suffix>`` (``-not-a-digit``)."""
    written = []
    for number, sample in enumerate(samples):
        name = "not-a-digit" if sample.label == NOT_A_DIGIT else f"digit{sample.label}"
        path = Path(folder) / sample.source / f"{number:05d}-{name}{sample.suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sample.payload)
        written.append(path)
    return written


def report_table(report: dict[str, Any], model_name: str) -> str:
    """Markdown tables of the evaluation: digits per source and overall, then the drawings that are not digits."""
    lines = [
        f"| source | samples | {model_name} with digitlab preprocessing | refused as not a digit "
        f"| {model_name} on a plain 28x28 resize |",
        "|---|---:|---:|---:|---:|",
    ]
    for source, row in [*report["sources"].items(), ("overall", report["overall"])]:
        lines.append(
            f"| {source} | {row['samples']} | {row['accuracy']:.1%} | {row['not_a_digit']:.1%} "
            f"| {row['naive_accuracy']:.1%} |"
        )
    lines.append("")
    hardest = report["hardest_source"]
    lines.append(f"Hardest source: {hardest} ({report['sources'][hardest]['accuracy']:.1%}).")
    if report["non_digits"]:
        lines += [
            "",
            f"| not digits | samples | refused | read as a confident digit by {model_name} | the same without the "
            "not-a-digit check |",
            "|---|---:|---:|---:|---:|",
        ]
        for source, row in report["non_digits"].items():
            lines.append(
                f"| {source} | {row['samples']} | {row['refused']:.1%} | {row['confident_digit']:.1%} "
                f"| {row['confident_digit_without_detector']:.1%} |"
            )
        lines.append("")
        detector_auroc = report["detector_auroc"]
        lines.append(
            "AUROC, digits against non-digits: "
            + (f"the not-a-digit detector's score {detector_auroc:.4f}; " if detector_auroc is not None else "")
            + f"{model_name}'s own confidence {report['confidence_auroc']:.4f}."
        )
    return "\n".join(lines)


def number_table(report: dict[str, Any], model_name: str) -> str:
    """A Markdown table of how well composed numbers are read, its rows named as in the README's table.

    The share of digits refused as not a digit is left out when the numbers were read without the check, and
    the numbers scanned small when they were not read (:func:`evaluate_numbers` alone).
    """
    shown = [
        (key, label)
        for key, label, _ in NUMBER_FIGURES
        if key in report and (report["screened"] or key != "refused_digits")
    ]
    return "\n".join(
        [
            f"| composed numbers | read by {model_name} |",
            "|---|---:|",
            f"| numbers | {report['numbers']} |",
            *(f"| {label} | {report[key]:.1%} |" for key, label in shown),
        ]
    )


def run_realworld(
    model_name: str,
    *,
    count: int = DEFAULT_COUNT,
    numbers: int = 0,
    seed: int = 0,
    models_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    save_to: str | Path | None = None,
) -> dict[str, Any]:
    """Render the validation set from MNIST training digits the model never fitted on, evaluate it, and report.

    The digits come from :func:`held_out_pool` for the model's entry in the
    manifest of ``models_dir``, the folder the model is loaded from; the real
    handwritten UCI digits (:func:`generate_uci`) and the drawn samples
    (:func:`generate_drawn`) join them. With
    ``numbers`` > 0, as many 4-digit numbers are also composed and read with
    :func:`digitlab.imaging.segment.read_number` with the not-a-digit check
    and the split network, as ``predict --multi`` reads them. ``save_to`` writes every single-digit
    sample as an image file.
    """
    from digitlab.persistence import read_manifest
    from digitlab.recognise import load_models, load_number_splitter, load_screen

    images, labels = load_mnist("train", data_dir)
    # The pool is settled before the model loads, so a model that cannot be scored fairly is refused at once.
    pool = held_out_pool(read_manifest(models_dir).models, model_name, images, labels)
    model = load_models([model_name], models_dir)[model_name]
    detector = load_screen(models_dir)
    samples = generate(images, labels, count, seed, pool=pool) + generate_uci(count, seed) + generate_drawn(count, seed)
    if save_to is not None:
        save_samples(samples, save_to)
    report: dict[str, Any] = {
        "model": model_name,
        "seed": seed,
        "held_out_images": len(pool),
        "digits": evaluate(samples, model, detector),
    }
    if numbers > 0:
        composed = generate_numbers(images, labels, numbers, seed=seed, pool=pool)
        splitter = load_number_splitter(models_dir)
        report["numbers"] = evaluate_numbers(composed, {model_name: model}, detector, splitter)
        small = evaluate_numbers(scanned_small(composed, seed), {model_name: model}, detector, splitter)
        report["numbers"]["small_exact"] = small["exact"]
        drawn = evaluate_numbers(drawn_numbers(composed, seed), {model_name: model}, detector, splitter)
        report["numbers"]["drawn_exact"] = drawn["exact"]
    return report


def write_realworld_record(
    reports: Mapping[str, dict[str, Any]],
    *,
    seed: int,
    count: int,
    numbers: int,
    seconds: float,
    models_dir: str | Path | None = None,
) -> Path:
    """Write the figures of every model's report (:func:`run_realworld` with these settings) as ``realworld.json``.

    The record keeps each report's figures, not its lists of mistakes, beside what was measured (seed,
    samples, numbers, date) and the SHA-256 of each model file read, in the models folder, from which
    ``python -m digitlab readme`` makes the README's table of it (:func:`realworld_table`).
    """
    from digitlab.persistence import read_manifest, writable_models_dir

    entries = read_manifest(models_dir).models
    record = {
        "measured_at": utc_timestamp(),
        "seconds": round(seconds, 1),
        "seed": seed,
        "count": count,
        "numbers": numbers,
        "models": {name: figures_of(report) for name, report in reports.items()},
        # Which files were read, so that a table of figures from other models says so.
        "model_sha256": {name: entries[name].sha256 for name in reports if name in entries},
    }
    destination = writable_models_dir(models_dir) / REALWORLD_NAME
    write_json_atomically(destination, record)
    return destination


def figures_of(report: dict[str, Any]) -> dict[str, Any]:
    """A report without its lists of single mistakes and refusals, which the README's table does not show."""
    figures = {"digits": {key: value for key, value in report["digits"].items() if key not in ("mistakes", "refused")}}
    if "numbers" in report:
        figures["numbers"] = {key: value for key, value in report["numbers"].items() if key != "mistakes"}
    return figures


def read_realworld_record(models_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The record ``realworld --model all --record`` wrote into the models folder, or None when it has none."""
    from digitlab.persistence import resolve_models_dir

    path = resolve_models_dir(models_dir) / REALWORLD_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def realworld_table(record: dict[str, Any], titles: Mapping[str, str], checksums: Mapping[str, str]) -> str:
    """A Markdown table with a column per model: accuracy per source, refusals, AUROC and whole numbers.

    ``checksums`` are the SHA-256 of the models now in the folder; when they are not the files the record
    measured, a sentence beneath the table says which models differ.
    """
    models = record["models"]
    names = list(models)

    def row(label: str, cell) -> list[str]:
        """The label, then the cell ``cell`` makes of each model's digit figures and number figures."""
        return [label, *(cell(models[name]["digits"], models[name].get("numbers")) for name in names)]

    first = models[names[0]]["digits"]
    rows = [row(source, source_cell(source)) for source in first["sources"]]
    rows += [
        row("**all digits**", all_digits_cell),
        row("all digits, plain 28x28 resize", lambda digits, _: f"{digits['overall']['naive_accuracy']:.1%}"),
        row("digits refused as not a digit", lambda digits, _: f"{digits['overall']['not_a_digit']:.1%}"),
    ]
    for kind in first["non_digits"]:
        rows += [
            row(f"{kind}: refused as not a digit", non_digit_cell(kind, "refused")),
            row(f"{kind}: read as a confident digit (without the check)", non_digit_cell(kind, "confident_digit")),
        ]
    rows.append(row("AUROC, digits against non-digits: detector score", lambda digits, _: auroc_cell(digits)))
    if all("numbers" in models[name] for name in names):
        rows += [
            row(label, exact_numbers_cell(key) if with_interval else number_cell(key))
            for key, label, with_interval in NUMBER_FIGURES
        ]
    headers = ["", *(f"{titles.get(name, name)} (`{name}`)" for name in names)]
    numbers = f", {record['numbers']} numbers" if record["numbers"] else ""
    return (
        f"Seed {record['seed']}: {record['count']} samples per source{numbers}; measured on "
        f"{record['measured_at'][:10]} in {record['seconds']:,.0f} s. {INTERVAL_NOTE}\n\n"
        + markdown_table(headers, rows)
        + changed_models_note(record, checksums)
    )


def interval_cell(share: float, samples: int) -> str:
    """The 95 % Wilson interval around a share measured on ``samples`` items, as " (88.6-95.8%)"."""
    interval = binomtest(round(share * samples), samples).proportion_ci(confidence_level=0.95, method="wilson")
    return f" ({interval.low * 100:.1f}-{interval.high:.1%})"


def all_digits_cell(digits, _) -> str:
    overall = digits["overall"]
    return f"**{overall['accuracy']:.1%}**" + interval_cell(overall["accuracy"], overall["samples"])


def source_cell(source: str):
    return lambda digits, _: f"{digits['sources'][source]['accuracy']:.1%}"


def non_digit_cell(kind: str, figure: str):
    """A non-digit kind's share refused, or read as a confident digit with the share without the check beside it."""

    def cell(digits, _) -> str:
        row = digits["non_digits"][kind]
        if figure == "refused":
            return f"{row['refused']:.1%}"
        return f"{row['confident_digit']:.1%} ({row['confident_digit_without_detector']:.1%})"

    return cell


def exact_numbers_cell(key: str):
    """A share of the numbers with its interval; a dash in a record written before the figure was measured."""
    return lambda _, numbers: (
        "-" if key not in numbers else f"{numbers[key]:.1%}" + interval_cell(numbers[key], numbers["numbers"])
    )


def number_cell(key: str):
    return lambda _, numbers: "-" if key not in numbers else f"{numbers[key]:.1%}"


def auroc_cell(digits: dict[str, Any]) -> str:
    """The detector's AUROC, or a dash where the model was read without a not-a-digit detector."""
    value = digits["detector_auroc"]
    return "-" if value is None else f"{value:.4f}"


def changed_models_note(record: dict[str, Any], checksums: Mapping[str, str]) -> str:
    """A sentence naming the models whose files are not those the record measured; empty when all are.

    A model counts when its file changed, when it was not measured, or when it was measured and is gone.
    """
    measured = record.get("model_sha256", {})
    differ = [
        name for name in dict.fromkeys([*record["models"], *checksums]) if measured.get(name) != checksums.get(name)
    ]
    if not differ:
        return ""
    return (
        f"\n\nThese figures are not those of the {', '.join(differ)} now in this folder: run `{RECORD_COMMAND}` again."
    )
