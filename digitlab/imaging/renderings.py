"""Real-world renderings of MNIST digits: scans, forms, drawings with thin and thick pens, phone photos.

Each renderer takes one MNIST image (white on black, 28x28) and returns an
ordinary image at its own size and polarity, with the conditions it was made
under. :mod:`digitlab.checks.realworld` renders held-out digits this way to
validate the lab on what users upload, and :mod:`digitlab.detection` renders
training digits to show the not-a-digit detector what real digits look like
once preprocessed.
"""

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from digitlab.imaging.decode import resize
from digitlab.imaging.normalise import crop_to_ink, thin_to_skeleton
from digitlab.models.features import deskew

# Skeletons are traced with the digit's longer side at this many pixels.
SKELETON_BOX = 80
EXIF_ORIENTATION_TAG = 0x0112
# A drawing app's pen, from hair-thin to finger-thick, as a share of the digit's height.
CANVAS_PEN_SHARE = (0.025, 0.22)


@dataclass(frozen=True)
class Rendering:
    """What a renderer makes of one digit: the image, the file suffix to save it with, and how it was made."""

    image: Image.Image
    suffix: str
    conditions: tuple[str, ...]


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
    return pen_drawing(image, rng, pen_share=CANVAS_PEN_SHARE, canvas_heights=(150, 640))


def render_thin_pen(image: np.ndarray, rng: np.random.Generator) -> Rendering:
    """A 1-3 pixel pen on a large canvas, as a stylus or a mouse in a paint program draws."""
    return pen_drawing(image, rng, pen_share=(0.003, 0.012), canvas_heights=(300, 800))


def render_thick_pen(image: np.ndarray, rng: np.random.Generator) -> Rendering:
    """A finger or a marker: a pen a fifth to a third of the digit's height."""
    return pen_drawing(image, rng, pen_share=(0.2, 0.33), canvas_heights=(120, 480))


def pen_drawing(
    image: np.ndarray, rng: np.random.Generator, *, pen_share: tuple[float, float], canvas_heights: tuple[int, int]
) -> Rendering:
    """The digit redrawn with a round pen ``pen_share`` of its height wide, anywhere on a canvas."""
    crop = digit_crop(image)
    canvas_height = int(rng.integers(canvas_heights[0], canvas_heights[1] + 1))
    canvas = (int(canvas_height * rng.uniform(0.6, 1.6)), canvas_height)
    digit_height = max(12, int(canvas[1] * rng.uniform(0.4, 0.95)))
    size = fitted_size(crop, digit_height)
    if size[0] > canvas[0] * 0.95:
        size = (int(canvas[0] * 0.95), digit_height)
    pen_width = round_pen_width(digit_height, pen_share, rng)
    shape = pen_shape(crop, size, pen_width)
    top = int(rng.integers(0, canvas[1] - size[1] + 1))
    left = int(rng.integers(0, canvas[0] - size[0] + 1))
    touching = rng.random() < 0.2
    if touching:
        top = 0 if rng.random() < 0.5 else canvas[1] - size[1]
    ink = place(shape, canvas, top, left)
    conditions = (
        f"{canvas[0]}x{canvas[1]}px",
        f"pen {pen_width:.1f}px, {pen_width / digit_height:.1%} of the height",
        *(["touching the edge"] if touching else []),
    )
    return canvas_export(ink, rng, conditions)


def round_pen_width(digit_height: int, pen_share: tuple[float, float], rng: np.random.Generator) -> float:
    """A pen's width in pixels for a digit ``digit_height`` tall: a log-uniform share of it in ``pen_share``, >= 1."""
    return max(1.0, digit_height * float(np.exp(rng.uniform(np.log(pen_share[0]), np.log(pen_share[1])))))


def canvas_export(ink: np.ndarray, rng: np.random.Generator, conditions: tuple[str, ...]) -> Rendering:
    """White-on-black ``ink`` saved as drawing apps save it: either polarity, coloured, transparent or a palette."""
    style = str(rng.choice(["white on black", "black on white", "transparent", "coloured", "palette"]))
    conditions = (*conditions, style)
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
    "thin-pen": render_thin_pen,
    "thick-pen": render_thick_pen,
}
