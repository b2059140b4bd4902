"""How often images that hold no number are read as one, as ``predict --multi`` reads them.

Two kinds of image:

- rows of three of the letters, symbols and doodles that ``python -m digitlab realworld`` draws
  (:func:`digitlab.checks.realworld.generate_drawn`, validation fonts and shapes), each cleaned as any
  upload is, scaled to one height and set side by side 20 pixels apart, dark on white;
- 400x120 uniform noise smoothed by a Gaussian of 2, 4 and 8 pixels, stretched to the full gray range.

Each is read with :func:`digitlab.imaging.segment.read_number` by the shipped CNN with the not-a-digit
check and the split network, as ``predict --multi`` reads it. The figures are quoted beside
``MOSTLY_NOT_DIGITS`` in ``digitlab/imaging/segment.py`` and in the README.

Run from the repository root (about a minute on two cores):
``DIGITLAB_DATA_DIR=/path/to/mnist .venv/bin/python scripts/non_numbers.py [--rows 100] [--seed 0]``.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digitlab.checks.realworld import NOT_A_DIGIT, generate_drawn  # noqa: E402
from digitlab.errors import DigitlabError, NoDigitFoundError  # noqa: E402
from digitlab.imaging.clean import clean_ink  # noqa: E402
from digitlab.imaging.decode import resize  # noqa: E402
from digitlab.imaging.normalise import crop_to_ink  # noqa: E402
from digitlab.imaging.segment import displayed_gray, read_number  # noqa: E402
from digitlab.recognise import load_models, load_number_splitter, load_screen  # noqa: E402
from digitlab.settings import DEFAULT_MODELS_DIR  # noqa: E402

DRAWINGS = 250
HEIGHT = 80
GAP = 20
MARGIN = 20
NOISE_SHAPE = (120, 400)
NOISE_SCALES = (2, 4, 8)
NOISE_IMAGES = 10


def drawing_ink(payload: bytes) -> np.ndarray | None:
    """The saved drawing's cleaned ink, white on black, cropped and scaled to :data:`HEIGHT` rows; None without ink."""
    return scaled_ink(clean_ink(displayed_gray(payload)[0]))


def scaled_ink(ink: np.ndarray) -> np.ndarray | None:
    """Ink, white on black, cropped and scaled to :data:`HEIGHT` rows; None with too little ink."""
    try:
        crop = crop_to_ink(ink)
    except NoDigitFoundError:
        return None
    width = max(8, round(crop.shape[1] * HEIGHT / crop.shape[0]))
    return np.clip(resize(crop, (width, HEIGHT)), 0.0, 1.0)


def row_of(inks: list[np.ndarray]) -> np.ndarray:
    """The drawings side by side, dark ink on white paper."""
    line = np.zeros((HEIGHT + 2 * MARGIN, sum(ink.shape[1] for ink in inks) + GAP * (len(inks) - 1) + 2 * MARGIN))
    left = MARGIN
    for ink in inks:
        line[MARGIN : MARGIN + HEIGHT, left : left + ink.shape[1]] = ink
        left += ink.shape[1] + GAP
    return 1.0 - line


def smooth_noise(rng: np.random.Generator, scale: float) -> np.ndarray:
    """Uniform noise blurred by a Gaussian of ``scale`` pixels, stretched to the full gray range."""
    noise = ndimage.gaussian_filter(rng.random(NOISE_SHAPE), scale)
    return (noise - noise.min()) / (noise.max() - noise.min())


def number_read(image: np.ndarray, models, screen, splitter) -> str:
    """The CNN's number, empty when it finds none or the image is refused."""
    try:
        return read_number(image, models, screen, splitter)[1][0].number
    except DigitlabError:
        return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    samples = [sample for sample in generate_drawn(DRAWINGS, arguments.seed) if sample.label == NOT_A_DIGIT]
    drawings = [ink for ink in map(drawing_ink, (sample.payload for sample in samples)) if ink is not None]
    models = load_models(["cnn"], DEFAULT_MODELS_DIR)
    screen = load_screen(DEFAULT_MODELS_DIR)
    splitter = load_number_splitter(DEFAULT_MODELS_DIR)
    rng = np.random.default_rng(arguments.seed)
    numbers, digits = 0, 0
    for _ in range(arguments.rows):
        number = number_read(
            row_of([drawings[index] for index in rng.choice(len(drawings), 3, replace=False)]), models, screen, splitter
        )
        numbers += bool(number)
        digits += len(number)
    print(f"{numbers} of {arguments.rows} rows of three drawings gave a number, with {digits} digits in all")
    for scale in NOISE_SCALES:
        read = [number_read(smooth_noise(rng, scale), models, screen, splitter) for _ in range(NOISE_IMAGES)]
        given = sum(bool(number) for number in read)
        print(f"{given} of {NOISE_IMAGES} images of gray noise smoothed over {scale} pixels gave a number")
    return 0


if __name__ == "__main__":
    sys.exit(main())
