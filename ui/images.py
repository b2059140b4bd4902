"""Digit images for display: enlarged with nearest-neighbour scaling so every MNIST pixel stays a visible square."""

import numpy as np
from PIL import Image


def enlarge(image: np.ndarray, scale: int = 6) -> Image.Image:
    """A grayscale PIL image ``scale`` times larger, pixels kept sharp; values are clamped to 0-255."""
    pixels = np.clip(np.asarray(image, dtype=np.float32), 0, 255).round().astype(np.uint8)
    height, width = pixels.shape
    return Image.fromarray(pixels).resize((width * scale, height * scale), Image.Resampling.NEAREST)


def montage(images: np.ndarray, columns: int, gap: int = 2, gap_value: int = 60) -> np.ndarray:
    """Tile equally sized images row by row into one array, separated by ``gap`` pixels of ``gap_value``."""
    images = np.asarray(images)
    count, height, width = images.shape
    rows = max(1, -(-count // columns))
    sheet = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap), gap_value, dtype=images.dtype
    )
    for position, image in enumerate(images):
        row, column = divmod(position, columns)
        top, left = row * (height + gap), column * (width + gap)
        sheet[top : top + height, left : left + width] = image
    return sheet
