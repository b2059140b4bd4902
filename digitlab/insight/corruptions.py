"""Corruptions of handwritten digits, after MNIST-C (Mu and Gilmer, 2019), each at one fixed, documented severity.

Every corruption takes ``(N, 28, 28)`` ``uint8`` images (white ink on black, as
MNIST) and returns new ones of the same shape and type; those drawn at random
(noise, directions, lines) are the same for the same ``seed``. They are the
distortions handwriting and scans meet: the page turned or slanted, the digit
small or off-centre, a grainy or dusty scan, a blurred photo, a thin or thick
pen, a dotted guide line or a scribble across it, fog or uneven lighting.
"""

from collections.abc import Callable

import numpy as np
from scipy import ndimage

SIDE = 28
# The fixed severities, each defined once: the corruptions use them and their descriptions quote them.
ROTATION_DEGREES = 30.0
SHEAR = 0.4
SCALE = 0.6
SHIFT_PIXELS = 5.0
PHOTONS = 40.0
IMPULSE_SHARE = 0.06
BLUR_PIXELS = 1.3
THIN_PEN_WINDOW = 2
THICK_PEN_WINDOW = 3
FOG_BRIGHTNESS = 0.5
# Each corruption's severity, in words for the dashboard and the README.
SEVERITIES = {
    "rotate": f"rotated by {ROTATION_DEGREES:g} degrees, either way",
    "shear": f"slanted by a shear of {SHEAR:g}, either way",
    "scale": f"shrunk to {SCALE * 100:g} % of its size, centred",
    "translate": f"moved {SHIFT_PIXELS:g} pixels in a random direction",
    "shot noise": f"Poisson noise as if {PHOTONS:g} photons made the brightest pixel",
    "impulse noise": f"{IMPULSE_SHARE * 100:g} % of the pixels set to black or white",
    "blur": f"Gaussian blur of {BLUR_PIXELS:g} pixels",
    "thin pen": f"strokes eroded by a {THIN_PEN_WINDOW}x{THIN_PEN_WINDOW} window",
    "thick pen": f"strokes dilated by a {THICK_PEN_WINDOW}x{THICK_PEN_WINDOW} window",
    "dotted line": "a dotted line across the digit",
    "zigzag": "a zigzag line across the digit",
    "fog": f"smooth fog at up to {FOG_BRIGHTNESS * 100:g} % of the ink's brightness",
}


def _rotate(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    angles = rng.choice([-ROTATION_DEGREES, ROTATION_DEGREES], size=len(images))
    return np.stack(
        [ndimage.rotate(image, angle, reshape=False, order=1) for image, angle in zip(images, angles, strict=True)]
    )


def _shear(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shears = rng.choice([-SHEAR, SHEAR], size=len(images))
    centre = (SIDE - 1) / 2
    out = []
    for image, shear in zip(images, shears, strict=True):
        matrix = np.array([[1.0, 0.0], [shear, 1.0]])
        offset = np.array([centre, centre]) - matrix @ np.array([centre, centre])
        out.append(ndimage.affine_transform(image, matrix, offset=offset, order=1))
    return np.stack(out)


def _scale(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    centre = (SIDE - 1) / 2
    matrix = np.eye(2) / SCALE
    offset = np.array([centre, centre]) - matrix @ np.array([centre, centre])
    return np.stack([ndimage.affine_transform(image, matrix, offset=offset, order=1) for image in images])


def _translate(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    angles = rng.uniform(0, 2 * np.pi, size=len(images))
    shifts = np.stack([SHIFT_PIXELS * np.sin(angles), SHIFT_PIXELS * np.cos(angles)], axis=1)
    return np.stack([ndimage.shift(image, shift, order=1) for image, shift in zip(images, shifts, strict=True)])


def _shot_noise(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.poisson(images / 255.0 * PHOTONS) / PHOTONS * 255.0


def _impulse_noise(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = images.astype(np.float64)
    hit = rng.random(images.shape) < IMPULSE_SHARE
    noisy[hit] = rng.choice([0.0, 255.0], size=int(hit.sum()))
    return noisy


def _blur(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return ndimage.gaussian_filter(images.astype(np.float64), sigma=(0, BLUR_PIXELS, BLUR_PIXELS))


def _thin_pen(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return ndimage.grey_erosion(images, size=(1, THIN_PEN_WINDOW, THIN_PEN_WINDOW))


def _thick_pen(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return ndimage.grey_dilation(images, size=(1, THICK_PEN_WINDOW, THICK_PEN_WINDOW))


def _line_points(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points of a line across the image, one per image: from the left edge to the right one."""
    starts = np.stack([rng.uniform(4, SIDE - 4, count), np.zeros(count)], axis=1)
    ends = np.stack([rng.uniform(4, SIDE - 4, count), np.full(count, SIDE - 1.0)], axis=1)
    return starts, ends


def _draw_points(images: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Set the given ``(N, points)`` pixel positions of each image to full brightness."""
    marked = images.astype(np.float64)
    rows = np.clip(np.round(rows).astype(int), 0, SIDE - 1)
    columns = np.clip(np.round(columns).astype(int), 0, SIDE - 1)
    marked[np.arange(len(images))[:, None], rows, columns] = 255.0
    return marked


def _dotted_line(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    starts, ends = _line_points(rng, len(images))
    steps = np.linspace(0, 1, SIDE)[::3]
    points = starts[:, None, :] + (ends - starts)[:, None, :] * steps[None, :, None]
    return _draw_points(images, points[..., 0], points[..., 1])


def _zigzag(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    starts, ends = _line_points(rng, len(images))
    steps = np.linspace(0, 1, 4 * SIDE)
    points = starts[:, None, :] + (ends - starts)[:, None, :] * steps[None, :, None]
    # A triangle wave of 3 pixels' amplitude and 6 pixels' period, across the line.
    wave = 3 * (2 * np.abs((steps * SIDE / 6) % 1 - 0.5) * 2 - 1)
    return _draw_points(images, points[..., 0] + wave[None, :], points[..., 1])


def _fog(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.random(images.shape), sigma=(0, 4, 4))
    low = field.min(axis=(1, 2), keepdims=True)
    high = field.max(axis=(1, 2), keepdims=True)
    fog = (field - low) / np.maximum(high - low, 1e-9) * FOG_BRIGHTNESS * 255.0
    return images + fog


CORRUPTIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "rotate": _rotate,
    "shear": _shear,
    "scale": _scale,
    "translate": _translate,
    "shot noise": _shot_noise,
    "impulse noise": _impulse_noise,
    "blur": _blur,
    "thin pen": _thin_pen,
    "thick pen": _thick_pen,
    "dotted line": _dotted_line,
    "zigzag": _zigzag,
    "fog": _fog,
}


def corrupt(images: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """``images`` with corruption ``name`` applied at its fixed severity, as ``uint8``; the same for the same seed."""
    if name not in CORRUPTIONS:
        raise ValueError(f"Unknown corruption {name!r}; choose one of {', '.join(CORRUPTIONS)}.")
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"Expected (N, 28, 28) images, got shape {images.shape}.")
    corrupted = CORRUPTIONS[name](images.astype(np.float64), np.random.default_rng(seed))
    return np.clip(np.round(corrupted), 0, 255).astype(np.uint8)
