"""Train the not-a-digit detector and choose where it refuses, on validation data only.

Digits to learn from are MNIST's training images outside the shipped models'
held-out split, some of them run through :func:`preprocess` as uploads are,
some rendered as scans, forms, drawings and photos
(:mod:`digitlab.imaging.renderings`) and then preprocessed, and digits drawn
from the training fonts of :mod:`digitlab.data.synthetic`.
Non-digits are letters, symbols and doodles drawn from the same fonts and
run through :func:`preprocess` too, so that the detector sees exactly what a
user's drawing becomes. The threshold is set on the held-out MNIST digits
and on digits and non-digits drawn from the *validation* fonts, which the
detector never saw; MNIST's test set is not used.
"""

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from digitlab.data import synthetic
from digitlab.data.mnist import load_mnist
from digitlab.imaging.preprocess import preprocessed
from digitlab.imaging.renderings import RENDERERS, encode
from digitlab.models.base import validation_split
from digitlab.models.detector import (
    DETECTOR_ARTIFACT,
    DetectorRecord,
    DigitDetector,
    ScoreHistogram,
    write_detector,
)

# The shipped classifiers hold out these MNIST training images; the detector does too, so the same
# digits stay unseen by every model the lab ships.
HELD_OUT_SIZE = 5000
HELD_OUT_SEED = 0
# About this share of the hardest kind of validation digit is refused: the threshold is that kind's quantile.
REFUSAL_BUDGET = 0.0075
TRAINING_NON_DIGITS = 20_000
TRAINING_FONT_DIGITS = 8_000
PREPROCESSED_MNIST = 5_000
RENDERED_MNIST = 8_000
VALIDATION_RENDERED = 3_000
VALIDATION_NON_DIGITS = 6_000
VALIDATION_FONT_DIGITS = 3_000
TRAINING_SEED = 1
VALIDATION_SEED = 2
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DetectorData:
    """Model inputs for training or validating the detector, with what each one is."""

    digits: np.ndarray
    digit_sources: np.ndarray
    non_digits: np.ndarray
    non_digit_kinds: np.ndarray
    refused_by_preprocessing: int


def rendered(digits: np.ndarray, count: int, rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    """``count`` of ``digits`` as image files of every real-world kind in turn (scans, forms, drawings, photos)."""
    sources = sorted(RENDERERS)
    for position, index in enumerate(rng.choice(len(digits), min(count, len(digits)), replace=False)):
        rendering = RENDERERS[sources[position % len(sources)]](digits[index], rng)
        yield "mnist-rendered", encode(rendering.image, rendering.suffix)


def _stack(pairs: Iterable[tuple[str, np.ndarray | None]]) -> tuple[np.ndarray, np.ndarray, int]:
    tags, inputs, refused = [], [], 0
    for tag, model_input in pairs:
        if model_input is None:
            refused += 1
            continue
        tags.append(tag)
        inputs.append(model_input)
    return np.stack(inputs), np.array(tags), refused


def build_data(
    mnist_digits: np.ndarray,
    *,
    fonts: tuple[str, ...],
    non_digit_count: int,
    font_digit_count: int,
    preprocessed_count: int,
    rendered_count: int,
    seed: int,
) -> DetectorData:
    """Digits (MNIST as given, some MNIST through preprocessing, some rendered as real-world files, font digits) and
    non-digits from ``fonts``."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(mnist_digits), min(preprocessed_count, len(mnist_digits)), replace=False)
    mnist_canvases = (("mnist-preprocessed", mnist_digits[index].astype(np.float32) / 255) for index in chosen)
    font_canvases = (("font-digit", canvas) for _, canvas in synthetic.digit_drawings(fonts, font_digit_count, seed))
    files = rendered(mnist_digits, rendered_count, rng)
    drawn_digits, drawn_sources, _ = _stack(preprocessed(itertools.chain(mnist_canvases, files, font_canvases)))
    non_digit_canvases = (
        (drawing.kind, drawing.image) for drawing in synthetic.non_digit_drawings(fonts, non_digit_count, seed)
    )
    non_digits, kinds, refused = _stack(preprocessed(non_digit_canvases))
    return DetectorData(
        digits=np.concatenate([mnist_digits, drawn_digits]),
        digit_sources=np.concatenate([np.full(len(mnist_digits), "mnist"), drawn_sources]),
        non_digits=non_digits,
        non_digit_kinds=kinds,
        refused_by_preprocessing=refused,
    )


def threshold_for(scores_by_source: dict[str, np.ndarray], budget: float = REFUSAL_BUDGET) -> float:
    """The lowest of the sources' ``budget`` quantiles (interpolated): each source has about ``budget`` of its digits
    or fewer below it."""
    return float(min(np.quantile(scores, budget) for scores in scores_by_source.values()))


def validation_figures(detector: DigitDetector, data: DetectorData) -> DetectorRecord:
    """Score the validation data, choose the threshold and record how the detector does there."""
    digit_scores = detector.score(data.digits)
    non_digit_scores = detector.score(data.non_digits)
    by_source = {source: digit_scores[data.digit_sources == source] for source in np.unique(data.digit_sources)}
    threshold = threshold_for(by_source)
    targets = np.concatenate([np.ones(len(digit_scores)), np.zeros(len(non_digit_scores))])
    return DetectorRecord(
        artifact=DETECTOR_ARTIFACT,
        sha256="",
        threshold=threshold,
        hyperparameters=detector.get_params(),
        digits_refused={source: float((scores < threshold).mean()) for source, scores in by_source.items()},
        non_digits_refused={
            kind: float((non_digit_scores[data.non_digit_kinds == kind] < threshold).mean())
            for kind in np.unique(data.non_digit_kinds)
        },
        auroc=float(roc_auc_score(targets, np.concatenate([digit_scores, non_digit_scores]))),
        histogram=ScoreHistogram.of(digit_scores, non_digit_scores),
        training={},
    )


def train_detector(
    *, data_dir: str | Path | None = None, out: str | Path, epochs: int = 10, seed: int = 0, progress: Progress | None
) -> DetectorRecord:
    """Build the data, train the detector, set its threshold on validation data and save it into ``out``."""
    report = progress or (lambda message: None)
    images, _ = load_mnist("train", data_dir)
    training_part, held_out = validation_split(len(images), HELD_OUT_SIZE, HELD_OUT_SEED)
    started = time.perf_counter()
    report("Drawing the training digits and non-digits (training fonts) and preprocessing them...")
    training = build_data(
        images[training_part],
        fonts=synthetic.TRAINING_FONTS,
        non_digit_count=TRAINING_NON_DIGITS,
        font_digit_count=TRAINING_FONT_DIGITS,
        preprocessed_count=PREPROCESSED_MNIST,
        rendered_count=RENDERED_MNIST,
        seed=TRAINING_SEED,
    )
    report("Drawing the validation digits and non-digits (validation fonts)...")
    validation = build_data(
        images[held_out],
        fonts=synthetic.VALIDATION_FONTS,
        non_digit_count=VALIDATION_NON_DIGITS,
        font_digit_count=VALIDATION_FONT_DIGITS,
        preprocessed_count=HELD_OUT_SIZE,
        rendered_count=VALIDATION_RENDERED,
        seed=VALIDATION_SEED,
    )
    report(f"Training on {len(training.digits):,} digits and {len(training.non_digits):,} non-digits...")

    def epoch_done(done: int, total: int, details: dict) -> None:
        report(f"epoch {done}/{total}: loss {details.get('loss', float('nan')):.4f}")

    detector = DigitDetector(epochs=epochs, seed=seed).fit(training.digits, training.non_digits, progress=epoch_done)
    record = validation_figures(detector, validation)
    record = record.with_training(
        {
            "digits": len(training.digits),
            "non_digits": len(training.non_digits),
            "training_fonts": list(synthetic.TRAINING_FONTS),
            "validation_fonts": list(synthetic.VALIDATION_FONTS),
            "validation_digits": len(validation.digits),
            "validation_non_digits": len(validation.non_digits),
            "non_digits_refused_by_preprocessing": validation.refused_by_preprocessing,
            "refusal_budget": REFUSAL_BUDGET,
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    return write_detector(detector, record, out)
