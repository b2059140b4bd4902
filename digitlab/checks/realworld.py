"""A validation set that looks like what users upload, made from MNIST training digits, and its evaluation.

MNIST's test accuracy says little about a photo of a digit on paper or a
finger drawing on a phone. This module re-renders MNIST *training* digits
(only ones the evaluated model never fitted on, found from its manifest entry
by :func:`held_out_pool`) as four kinds of real-world input, each an ordinary
image file at its own size and polarity:

``envelope-scan``
    low-resolution grayscale postal scans (12-24 pixels), the digit as tall
    as the box, half of them deslanted, some widened, blurred, noisy, either
    polarity;
``binarised-form``
    black-and-white form scans, half stretched to fill a 16x16 box whatever
    the digit's shape, the rest in a 16-48 pixel box with their aspect kept;
    strokes thinned or thickened, some with specks, either polarity;
``canvas-drawing``
    canvas or tablet drawings (150-640 pixels) with a constant-width pen
    from hair-thin to finger-thick, off centre or touching the edge, white on
    black, black on white, coloured, transparent or palette images;
``phone-photo``
    pen on paper photographed by a phone (400-1200 pixels, JPEG): tinted
    paper, uneven lighting and shadows, paper texture, blur, sensor noise,
    dust, small rotations and EXIF-rotated pixels.

Each sample records its conditions (size, pen, polarity...) so mistakes can
be traced. No handwriting-style fonts are installed on the development
machine, so no font-rendered digits are included. :func:`evaluate` runs
every sample through the same path as ``python -m digitlab predict``
(``load_image``, ``preprocess``, the model) and, for comparison, through a
naive plain resize to 28x28. :func:`generate_numbers` composes multi-digit
numbers from the same digits for :func:`digitlab.imaging.segment.read_number`.
"""

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from digitlab.data.mnist import IMAGE_SHAPE, TRAIN_IMAGES, data_checksum, load_mnist
from digitlab.errors import DigitlabError
from digitlab.imaging.preprocess import crop_to_ink, preprocess, resize, thin_to_skeleton
from digitlab.imaging.segment import read_number
from digitlab.manifest import ModelEntry
from digitlab.models.base import DigitClassifier, validation_split
from digitlab.models.features import deskew
from digitlab.models.registry import REGISTRY

SOURCES = ("envelope-scan", "binarised-form", "canvas-drawing", "phone-photo")
# The split the families' default hyperparameters hold out (the shipped models use it). Evaluation never
# assumes it: a promoted run may have trained on another split, so run_realworld asks held_out_pool instead.
HELD_OUT_SIZE = 5000
HELD_OUT_SEED = 0
DEFAULT_COUNT = 250
# Skeletons are traced with the digit's longer side at this many pixels.
SKELETON_BOX = 80
EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Sample:
    """One validation image: the encoded file, its true digit and the kind of source it imitates."""

    source: str
    label: int
    payload: bytes
    suffix: str
    mnist_index: int
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rendering:
    """What a renderer makes of one digit: the image, the file suffix to save it with, and how it was made."""

    image: Image.Image
    suffix: str
    conditions: tuple[str, ...]


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


def encode(image: Image.Image, suffix: str) -> bytes:
    """The bytes of ``image`` saved in the format its suffix names (EXIF kept for JPEG)."""
    buffer = io.BytesIO()
    if suffix == ".jpg":
        image.save(buffer, format="JPEG", quality=image.info.get("quality", 85), exif=image.getexif().tobytes())
    else:
        image.save(buffer, format={".png": "PNG", ".gif": "GIF", ".bmp": "BMP"}[suffix])
    return buffer.getvalue()


def digit_crop(image: np.ndarray) -> np.ndarray:
    """The MNIST digit's ink rectangle as floats in [0, 1]."""
    return crop_to_ink(image.astype(np.float32) / 255.0)


def scanned_shape(crop: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The digit's own pen trace scaled to ``size`` (width, height), edges kept crisp when enlarging."""
    scaled = resize(crop, size)
    gain = max(1.0, min(size) / max(crop.shape) / 2)
    return np.clip((scaled - 0.5) * gain + 0.5, 0.0, 1.0)


def pen_shape(crop: np.ndarray, size: tuple[int, int], width: float) -> np.ndarray:
    """The digit redrawn along its centre line with a round pen ``width`` pixels wide, at ``size`` (width, height).

    The centre line is traced on an enlarged copy, and its segments are
    sampled densely at the target size, so a hair-thin pen stays unbroken.
    """
    height, breadth = crop.shape
    scale = SKELETON_BOX / max(height, breadth)
    work = resize(crop, (max(1, round(breadth * scale)), max(1, round(height * scale))))
    # Smoothing first keeps the traced centre line free of spurs at the corners of the enlarged pixels.
    skeleton = thin_to_skeleton(ndimage.gaussian_filter(work, 1.0) > 0.4)
    rows, columns = np.nonzero(skeleton)
    starts, ends = [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        neighbour_rows, neighbour_columns = rows + dr, columns + dc
        inside = (
            (neighbour_rows < skeleton.shape[0]) & (neighbour_columns >= 0) & (neighbour_columns < skeleton.shape[1])
        )
        linked = np.zeros_like(inside)
        linked[inside] = skeleton[neighbour_rows[inside], neighbour_columns[inside]]
        starts.append(np.stack([rows[linked], columns[linked]], axis=1))
        ends.append(np.stack([neighbour_rows[linked], neighbour_columns[linked]], axis=1))
    points = np.stack([rows, columns], axis=1).astype(np.float64)
    factor = np.array([size[1] / skeleton.shape[0], size[0] / skeleton.shape[1]])
    start, end = np.concatenate(starts).astype(np.float64), np.concatenate(ends).astype(np.float64)
    steps = np.linspace(0.0, 1.0, int(np.ceil(factor.max() * 2)) + 2)
    traced = (start[:, None, :] + steps[None, :, None] * (end - start)[:, None, :]).reshape(-1, 2)
    traced = np.concatenate([traced, points])
    target = np.ones((size[1], size[0]), dtype=bool)
    pixel = np.clip(np.round((traced + 0.5) * factor - 0.5).astype(int), 0, [size[1] - 1, size[0] - 1])
    target[pixel[:, 0], pixel[:, 1]] = False
    distance = ndimage.distance_transform_edt(target)
    return np.clip(width / 2 + 0.5 - distance, 0.0, 1.0).astype(np.float32)


def fitted_size(crop: np.ndarray, height: int) -> tuple[int, int]:
    """(width, height) of the digit at ``height`` pixels tall with its aspect ratio kept."""
    return max(1, round(crop.shape[1] * height / crop.shape[0])), height


def place(shape: np.ndarray, canvas_size: tuple[int, int], top: int, left: int) -> np.ndarray:
    """Paste ``shape`` into an empty canvas (width, height) at (top, left), clipping at the edges."""
    canvas = np.zeros((canvas_size[1], canvas_size[0]), dtype=np.float32)
    height, width = shape.shape
    rows = slice(max(0, top), min(canvas_size[1], top + height))
    columns = slice(max(0, left), min(canvas_size[0], left + width))
    canvas[rows, columns] = shape[rows.start - top : rows.stop - top, columns.start - left : columns.stop - left]
    return canvas


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values * 255), 0, 255).astype(np.uint8)


def render_envelope_scan(image: np.ndarray, rng: np.random.Generator) -> Rendering:
    """A low-resolution grayscale postal scan: small, soft, noisy, often deslanted, the digit as tall as the box."""
    conditions = []
    if rng.random() < 0.5:
        image = to_uint8(deskew(image[None])[0])
        conditions.append("deslanted")
    crop = digit_crop(image)
    box = int(rng.integers(12, 25))
    margin = int(rng.integers(0, 2))
    inner = box - 2 * margin
    width, height = fitted_size(crop, inner)
    widening = rng.uniform(1.0, 1.5) if rng.random() < 0.3 else 1.0
    if widening > 1:
        conditions.append("widened")
    size = (max(1, min(inner, round(width * widening))), height)
    shape = resize(crop, size)
    top = margin
    left = margin + int(rng.integers(0, inner - size[0] + 1))
    ink = ndimage.gaussian_filter(place(shape, (box, box), top, left), rng.uniform(0.0, 0.7))
    paper, pen = rng.uniform(0.0, 0.25), rng.uniform(0.55, 1.0)
    values = paper + (pen - paper) * ink + rng.normal(0.0, rng.uniform(0.01, 0.05), ink.shape)
    dark_on_light = rng.random() < 0.6
    conditions.append("dark on light" if dark_on_light else "light on dark")
    if dark_on_light:
        values = 1.0 - values
    return Rendering(Image.fromarray(to_uint8(values)), ".png", (f"{box}px", *conditions))


def render_binarised_form(image: np.ndarray, rng: np.random.Generator) -> Rendering:
    """A black-and-white form scan: thresholded, pen width varied, some specks.

    Half imitate scans whose digits were stretched to fill a 16x16 box
    whatever their shape; the rest keep their aspect ratio in a 16-48 pixel box.
    """
    crop = digit_crop(image)
    stretched = rng.random() < 0.5
    height = 16 if stretched else int(rng.choice([16, 20, 24, 32, 48]))
    width = height if stretched else int(round(height * rng.choice([1.0, 0.75])))
    size = (width, height) if stretched else (min(width, fitted_size(crop, height)[0]), height)
    scale = 4
    large = (size[0] * scale, size[1] * scale)
    pen = rng.choice(["own", "thin", "thick"], p=[0.5, 0.25, 0.25])
    if pen == "own":
        shape = scanned_shape(crop, large)
    else:
        ratio = rng.uniform(0.05, 0.08) if pen == "thin" else rng.uniform(0.16, 0.22)
        shape = pen_shape(crop, large, ratio * large[1])
    small = resize(shape, size) > rng.uniform(0.35, 0.6)
    box = np.zeros((height, width), dtype=bool)
    left = int(rng.integers(0, width - size[0] + 1))
    box[:, left : left + size[0]] = small
    specks = rng.random() < 0.3
    if specks:
        box |= rng.random(box.shape) < 0.004
    ink_is_black = rng.random() < 0.75
    pixels = ~box if ink_is_black else box
    conditions = (
        f"{width}x{height}px",
        "stretched to fill" if stretched else "aspect kept",
        f"{pen} pen",
        "black on white" if ink_is_black else "white on black",
        *(["specks"] if specks else []),
    )
    return Rendering(Image.fromarray(pixels.astype(np.uint8) * 255).convert("1"), ".png", conditions)


def render_canvas_drawing(image: np.ndarray, rng: np.random.Generator) -> Rendering:
    """A drawing app's export: a constant-width pen from hair-thin to finger-thick, anywhere on the canvas."""
    crop = digit_crop(image)
    canvas_height = int(rng.integers(150, 641))
    canvas = (int(canvas_height * rng.uniform(0.6, 1.6)), canvas_height)
    digit_height = max(12, int(canvas[1] * rng.uniform(0.4, 0.95)))
    size = fitted_size(crop, digit_height)
    if size[0] > canvas[0] * 0.95:
        size = (int(canvas[0] * 0.95), digit_height)
    pen_width = digit_height * float(np.exp(rng.uniform(np.log(0.025), np.log(0.22))))
    shape = pen_shape(crop, size, pen_width)
    top = int(rng.integers(0, canvas[1] - size[1] + 1))
    left = int(rng.integers(0, canvas[0] - size[0] + 1))
    touching = rng.random() < 0.2
    if touching:
        top = 0 if rng.random() < 0.5 else canvas[1] - size[1]
    ink = place(shape, canvas, top, left)
    style = str(rng.choice(["white on black", "black on white", "transparent", "coloured", "palette"]))
    conditions = (
        f"{canvas[0]}x{canvas[1]}px",
        f"pen {pen_width / digit_height:.0%} of the height",
        style,
        *(["touching the edge"] if touching else []),
    )
    if style == "white on black":
        return Rendering(Image.fromarray(to_uint8(ink)), ".png", conditions)
    if style == "black on white":
        return Rendering(Image.fromarray(to_uint8(1.0 - ink)), ".png", conditions)
    colour = rng.uniform(0.0, 0.6, 3) if rng.random() < 0.7 else np.ones(3)
    if style == "transparent":
        rgba = np.concatenate([np.broadcast_to(colour, (*ink.shape, 3)), ink[..., None]], axis=2)
        return Rendering(Image.fromarray(to_uint8(rgba), "RGBA"), ".png", conditions)
    rgb = 1.0 - ink[..., None] * (1.0 - rng.uniform(0.0, 0.6, 3))
    picture = Image.fromarray(to_uint8(rgb), "RGB")
    if style == "palette":
        return Rendering(picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=32), ".gif", conditions)
    return Rendering(picture, ".png", conditions)


def lighting_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Multiplicative illumination of a photo: a gradient, a vignette and sometimes a soft shadow."""
    height, width = shape
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    rows, columns = rows / height - 0.5, columns / width - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(angle) * columns + np.sin(angle) * rows) * rng.uniform(0.0, 0.5)
    vignette = (rows**2 + columns**2) * rng.uniform(0.0, 0.8)
    light = 1.0 - gradient - vignette
    if rng.random() < 0.35:
        shadow_angle = rng.uniform(0, 2 * np.pi)
        position = np.cos(shadow_angle) * columns + np.sin(shadow_angle) * rows - rng.uniform(-0.3, 0.3)
        edge = 1.0 / (1.0 + np.exp(-position / rng.uniform(0.02, 0.1)))
        light = light * (1.0 - rng.uniform(0.15, 0.45) * edge)
    return light / light.max()


def render_phone_photo(image: np.ndarray, rng: np.random.Generator) -> Rendering:
    """Pen on paper seen by a phone: tinted paper, uneven light, texture, blur, noise, dust, JPEG, EXIF rotation."""
    crop = digit_crop(image)
    longer = int(rng.integers(400, 1201))
    shape_hw = (longer, int(longer * rng.choice([0.75, 1.0]))) if rng.random() < 0.5 else None
    height, width = shape_hw or (int(longer * 0.75), longer)
    digit_height = int(min(height, width) * rng.uniform(0.25, 0.7))
    size = fitted_size(crop, digit_height)
    own_pen = rng.random() < 0.5
    ink = scanned_shape(crop, size) if own_pen else pen_shape(crop, size, digit_height * rng.uniform(0.05, 0.14))
    ink = ndimage.rotate(ink, rng.uniform(-10, 10), reshape=True, order=1)
    top = int(rng.integers(0, max(1, height - ink.shape[0]) + 1))
    left = int(rng.integers(0, max(1, width - ink.shape[1]) + 1))
    coverage = place(ink, (width, height), top, left) * rng.uniform(0.6, 0.95)
    for _ in range(int(rng.integers(0, 6))):
        row, column, radius = rng.integers(0, height), rng.integers(0, width), rng.uniform(0.8, 3.0)
        rows = slice(max(0, int(row - radius)), int(row + radius) + 1)
        columns = slice(max(0, int(column - radius)), int(column + radius) + 1)
        coverage[rows, columns] = np.maximum(coverage[rows, columns], rng.uniform(0.3, 0.8))
    paper = rng.uniform(0.78, 0.97) * np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 1.0)])
    pen_colour = rng.choice([[0.08, 0.08, 0.1], [0.1, 0.15, 0.45], [0.25, 0.25, 0.25]])
    texture = ndimage.gaussian_filter(rng.normal(0.0, 1.0, (height, width)), 1.2) * rng.uniform(0.01, 0.05) * 2
    surface = paper * (1.0 + texture[..., None])
    pixels = surface * (1.0 - coverage[..., None]) + np.asarray(pen_colour) * coverage[..., None]
    pixels = pixels * lighting_field((height, width), rng)[..., None]
    pixels = ndimage.gaussian_filter(pixels, (rng.uniform(0.4, 1.5),) * 2 + (0,))
    pixels = pixels + rng.normal(0.0, rng.uniform(0.005, 0.03), pixels.shape)
    photo = Image.fromarray(to_uint8(pixels), "RGB")
    rotated = rng.random() < 0.25
    if rotated:
        orientation, stored_turn = [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)][
            int(rng.integers(0, 2))
        ]
        photo = photo.transpose(stored_turn)
        photo.getexif()[EXIF_ORIENTATION_TAG] = orientation
    photo.info["quality"] = int(rng.integers(55, 93))
    conditions = (
        f"{width}x{height}px",
        "digit's own pen" if own_pen else "ballpoint pen",
        f"quality {photo.info['quality']}",
        *(["EXIF-rotated"] if rotated else []),
    )
    return Rendering(photo, ".jpg", conditions)


RENDERERS = {
    "envelope-scan": render_envelope_scan,
    "binarised-form": render_binarised_form,
    "canvas-drawing": render_canvas_drawing,
    "phone-photo": render_phone_photo,
}


def compose_number(digits: np.ndarray, rng: np.random.Generator) -> tuple[Rendering, list[tuple[int, int, int, int]]]:
    """Several MNIST digits written side by side as one number, as on a form or a cheque.

    Each digit is scaled by up to 15 % and shifted up or down by up to two
    MNIST pixels; the gaps between digits are random, and a fifth are
    zero or negative, so those digits touch or overlap slightly. The line is
    enlarged two to four times and shown white on black or dark on light
    paper, with a little blur and noise. Returns the rendering and each
    digit's box ``(x, y, width, height)`` in the image's pixels.
    """
    crops = [digit_crop(digit) for digit in digits]
    scales = rng.uniform(0.85, 1.15, len(crops))
    shapes = [
        resize(crop, fitted_size(crop, max(8, round(20 * scale)))) for crop, scale in zip(crops, scales, strict=True)
    ]
    gaps = np.where(rng.random(len(shapes)) < 0.2, rng.uniform(-1.5, 0.5, len(shapes)), rng.uniform(2, 8, len(shapes)))
    margin = 6
    lefts, position = [], float(margin)
    for shape, gap in zip(shapes, gaps, strict=True):
        lefts.append(round(position))
        position += shape.shape[1] + gap
    tops = [margin + round(rng.uniform(-2, 2)) + (24 - shape.shape[0]) // 2 for shape in shapes]
    line = np.zeros((24 + 2 * margin, round(position) + margin), dtype=np.float32)
    for shape, top, left in zip(shapes, tops, lefts, strict=True):
        line = np.maximum(line, place(shape, (line.shape[1], line.shape[0]), top, left))
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
        f"touching gaps {int((gaps[:-1] <= 0.5).sum())}",
    )
    boxes = [
        (round(left * enlarge), round(top * enlarge), round(shape.shape[1] * enlarge), round(shape.shape[0] * enlarge))
        for shape, top, left in zip(shapes, tops, lefts, strict=True)
    ]
    return Rendering(Image.fromarray(to_uint8(values)), ".png", conditions), boxes


@dataclass(frozen=True)
class NumberSample:
    """A composed number: the encoded image and the digits it shows, left to right."""

    number: str
    payload: bytes
    conditions: tuple[str, ...]
    boxes: tuple[tuple[int, int, int, int], ...]


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
        samples.append(NumberSample(number, payload, rendering.conditions, tuple(boxes)))
    return samples


def evaluate_numbers(samples: list[NumberSample], models: dict[str, DigitClassifier]) -> dict[str, Any]:
    """How many composed numbers ``read_number`` reads exactly right, and how many digits it finds and reads."""
    exact, right_count, digits_right, total_digits, mistakes = 0, 0, 0, 0, []
    for position, sample in enumerate(samples):
        total_digits += len(sample.number)
        try:
            number = read_number(sample.payload, models)[1][0].number
        except DigitlabError as error:
            mistakes.append({"position": position, "number": sample.number, "read": None, "error": str(error)})
            continue
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
        "right_digit_count": right_count / len(samples),
        "digit_accuracy": digits_right / total_digits,
        "mistakes": mistakes,
    }


def naive_input(payload: bytes) -> np.ndarray:
    """What a typical demo does with an upload: grayscale and a plain resize to 28x28, nothing else."""
    image = Image.open(io.BytesIO(payload)).convert("L")
    return np.asarray(image.resize(IMAGE_SHAPE, Image.Resampling.BILINEAR), dtype=np.uint8)


def evaluate(samples: list[Sample], model: DigitClassifier) -> dict[str, Any]:
    """Accuracy per source and overall through ``preprocess`` and through a naive resize.

    A sample that preprocessing refuses (for instance "no digit found")
    counts as an error and is listed under ``refused``.
    """
    inputs, naive, refused = [], [], []
    for position, sample in enumerate(samples):
        try:
            inputs.append(preprocess(sample.payload))
        except DigitlabError as error:
            refused.append({"position": position, "source": sample.source, "error": str(error)})
            inputs.append(np.zeros(IMAGE_SHAPE, dtype=np.uint8))
        naive.append(naive_input(sample.payload))
    truth = np.array([sample.label for sample in samples])
    predicted = model.predict(np.stack(inputs))
    predicted[[entry["position"] for entry in refused]] = -1
    naive_predicted = model.predict(np.stack(naive))
    sources = np.array([sample.source for sample in samples])
    rows = {}
    for source in dict.fromkeys(sample.source for sample in samples):
        chosen = sources == source
        rows[source] = {
            "samples": int(chosen.sum()),
            "accuracy": float((predicted[chosen] == truth[chosen]).mean()),
            "naive_accuracy": float((naive_predicted[chosen] == truth[chosen]).mean()),
        }
    overall = {
        "samples": len(samples),
        "accuracy": float((predicted == truth).mean()),
        "naive_accuracy": float((naive_predicted == truth).mean()),
    }
    hardest = min(rows, key=lambda source: rows[source]["accuracy"])
    wrong = np.flatnonzero(predicted != truth)
    return {
        "sources": rows,
        "overall": overall,
        "hardest_source": hardest,
        "refused": refused,
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
    """Write every sample as an ordinary image file, ``<source>/<number>-digit<label><suffix>``."""
    written = []
    for number, sample in enumerate(samples):
        path = Path(folder) / sample.source / f"{number:05d}-digit{sample.label}{sample.suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sample.payload)
        written.append(path)
    return written


def report_table(report: dict[str, Any], model_name: str) -> str:
    """A Markdown table of the evaluation, one row per source and one overall."""
    lines = [
        f"| source | samples | {model_name} with digitlab preprocessing | {model_name} on a plain 28x28 resize |",
        "|---|---:|---:|---:|",
    ]
    for source, row in [*report["sources"].items(), ("overall", report["overall"])]:
        lines.append(f"| {source} | {row['samples']} | {row['accuracy']:.1%} | {row['naive_accuracy']:.1%} |")
    lines.append("")
    hardest = report["hardest_source"]
    lines.append(f"Hardest source: {hardest} ({report['sources'][hardest]['accuracy']:.1%}).")
    return "\n".join(lines)


def number_table(report: dict[str, Any], model_name: str) -> str:
    """A Markdown table of how well composed numbers are read."""
    return "\n".join(
        [
            f"| composed 4-digit numbers | read by {model_name} |",
            "|---|---:|",
            f"| numbers | {report['numbers']} |",
            f"| read exactly right | {report['exact']:.1%} |",
            f"| right number of digits found | {report['right_digit_count']:.1%} |",
            f"| digits read right (a wrongly split number's digits count as wrong) | {report['digit_accuracy']:.1%} |",
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
    manifest of ``models_dir``, the folder the model is loaded from. With
    ``numbers`` > 0, as many 4-digit numbers are also composed and read with
    :func:`digitlab.imaging.segment.read_number`. ``save_to`` writes every
    single-digit sample as an image file.
    """
    from digitlab.persistence import read_manifest
    from digitlab.recognise import load_models

    images, labels = load_mnist("train", data_dir)
    # The pool is settled before the model loads, so a model that cannot be scored fairly is refused at once.
    pool = held_out_pool(read_manifest(models_dir).models, model_name, images, labels)
    model = load_models([model_name], models_dir)[model_name]
    samples = generate(images, labels, count, seed, pool=pool)
    if save_to is not None:
        save_samples(samples, save_to)
    report: dict[str, Any] = {
        "model": model_name,
        "seed": seed,
        "held_out_images": len(pool),
        "digits": evaluate(samples, model),
    }
    if numbers > 0:
        composed = generate_numbers(images, labels, numbers, seed=seed, pool=pool)
        report["numbers"] = evaluate_numbers(composed, {model_name: model})
    return report
