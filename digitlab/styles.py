"""Extra training examples in the ways people write and the ways their digits reach the lab.

MNIST is one kind of pen on one kind of scanner. The networks also learn from
training digits rendered as scans, forms, drawings and photos and run through
:func:`preprocess`, from digits drawn with the *training* fonts of
:mod:`digitlab.data.synthetic` (a third of their 7s barred), and from
elastically distorted training digits with a thinner or thicker pen. Every
example is made from the training part the network fits on: the held-out
validation digits, and the validation fonts ``realworld`` draws its writing
styles with, stay unseen. Networks take them when trained with a
``style_share`` above zero (``python -m digitlab train --model cnn --style-share 0.2``); the shipped CNN
was fine-tuned so (``--reuse --style-share 0.2 --keep-start 0.3``).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from digitlab.data import synthetic
from digitlab.imaging.preprocess import preprocessed
from digitlab.imaging.renderings import RENDERERS, encode

# Raise whenever the same arguments would give other examples, so recorded training notes stay truthful.
STYLES_VERSION = 1
# How the extra examples divide between kinds. Phone photos take half a second each to render and clean,
# so they get the smallest share; binarised forms and font digits differ most from MNIST and get the largest.
KIND_SHARES = {
    "envelope-scan": 0.14,
    "binarised-form": 0.2,
    "canvas-drawing": 0.1,
    "phone-photo": 0.04,
    "thin-pen": 0.1,
    "thick-pen": 0.08,
    "font-digit": 0.2,
    "elastic": 0.14,
}
# Simard et al. (2003)'s elastic distortion: a random displacement field smoothed by a Gaussian of this
# many pixels and scaled by ELASTIC_ALPHA pixels.
ELASTIC_SIGMA = 4.0
ELASTIC_ALPHA = (20.0, 36.0)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class StyleExamples:
    """Extra training examples as model inputs, with their digits and the kind each one is."""

    images: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        """How many examples of each kind, in :data:`KIND_SHARES` order."""
        return {kind: int((self.kinds == kind).sum()) for kind in KIND_SHARES if (self.kinds == kind).any()}


def kind_counts(total: int) -> dict[str, int]:
    """``total`` examples divided between the kinds by :data:`KIND_SHARES`; rounding leftovers go to MNIST kinds."""
    counts = {kind: int(total * share) for kind, share in KIND_SHARES.items()}
    counts["elastic"] += total - sum(counts.values())
    return counts


def elastic(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (28x28 uint8) bent by a smooth random displacement field, drawn with a thinner or thicker pen."""
    alpha = rng.uniform(*ELASTIC_ALPHA)
    shifts = [ndimage.gaussian_filter(rng.uniform(-1, 1, image.shape), ELASTIC_SIGMA) * alpha for _ in range(2)]
    rows, columns = np.meshgrid(np.arange(image.shape[0]), np.arange(image.shape[1]), indexing="ij")
    bent = ndimage.map_coordinates(image.astype(np.float32) / 255, [rows + shifts[0], columns + shifts[1]], order=1)
    pen = rng.choice(["own", "thinner", "thicker"])
    if pen == "thicker":
        bent = ndimage.grey_dilation(bent, size=(2, 2))
    elif pen == "thinner":
        bent = ndimage.grey_erosion(bent, size=(2, 2))
    return np.clip(bent, 0.0, 1.0)


def _sources(
    images: np.ndarray, labels: np.ndarray, counts: dict[str, int], rng: np.random.Generator
) -> Iterator[tuple[str, int, np.ndarray | bytes]]:
    """(kind, digit, canvas or image file) for every example to make."""
    for kind, count in counts.items():
        if kind == "font-digit":
            fonts_seed = np.random.SeedSequence(int(rng.integers(2**32)))
            for label, canvas in synthetic.digit_drawings(synthetic.TRAINING_FONTS, count, fonts_seed):
                yield kind, label, canvas
            continue
        for index in rng.choice(len(images), count, replace=count > len(images)):
            if kind == "elastic":
                yield kind, int(labels[index]), elastic(images[index], rng)
            else:
                rendering = RENDERERS[kind](images[index], rng)
                yield kind, int(labels[index]), encode(rendering.image, rendering.suffix)


def style_examples(
    images: np.ndarray, labels: np.ndarray, *, count: int, seed: int, progress: Progress | None = None
) -> StyleExamples:
    """``count`` extra examples made from ``images`` (the training part only) and the training fonts.

    Each goes through :func:`preprocess`, as a user's file does; the few that preprocessing refuses
    (a rendering too faint to hold a digit) are left out, so slightly fewer than ``count`` may come back.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, STYLES_VERSION]))
    tagged = (((kind, label), source) for kind, label, source in _sources(images, labels, kind_counts(count), rng))
    made_images, made_labels, made_kinds = [], [], []
    for done, ((kind, label), model_input) in enumerate(preprocessed(tagged), start=1):
        if progress and (done % 500 == 0 or done == count):
            progress(done, count)
        if model_input is None:
            continue
        made_images.append(model_input)
        made_labels.append(label)
        made_kinds.append(kind)
    return StyleExamples(
        images=np.stack(made_images) if made_images else np.zeros((0, 28, 28), np.uint8),
        labels=np.array(made_labels, dtype=np.uint8),
        kinds=np.array(made_kinds, dtype=str),
    )
