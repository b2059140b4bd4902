"""Refit ``digitlab.imaging.segment.SPLIT_WEIGHTS`` and print the result beside the shipped weights.

The weights of :func:`digitlab.imaging.segment.split_evidence` come from a logistic regression (C=10,
scikit-learn's default L2 penalty and lbfgs solver, an intercept, the features unscaled, as
``split_evidence`` applies them) on the regions that 400 numbers composed with each of seeds 1 and 2
(:func:`digitlab.checks.realworld.generate_numbers`, digits from the shipped models' held-out split)
give. Each number is cleaned and grouped as :func:`digitlab.imaging.segment.segment_ink` does; every
region wider than ``MAYBE_SEVERAL`` line heights that has a cut contributes its ``split_features``
(read by the shipped CNN and split network), labelled by whether its columns hold more than one true
digit centre. A region that truly holds several digits is cut where ``split_features`` would cut it
and its pieces are regions too, so the regions do not depend on the weights being fitted.
``scripts/train_split_network.py`` finds its training regions the same way (:func:`labelled_regions`).

Run from the repository root (about two minutes on two cores), after the split network is trained:
``DIGITLAB_DATA_DIR=/path/to/mnist .venv/bin/python scripts/fit_split_weights.py [--without-network]``.
It exits with status 1 when the refitted weights, rounded to three decimals, differ from the shipped ones
(``SPLIT_WEIGHTS``, or with ``--without-network`` ``SPLIT_WEIGHTS_WITHOUT_NETWORK``).
"""

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digitlab.checks.realworld import NumberSample, generate_numbers, held_out_indices  # noqa: E402
from digitlab.data.mnist import load_mnist  # noqa: E402
from digitlab.imaging import segment  # noqa: E402
from digitlab.imaging.clean import ink_components  # noqa: E402
from digitlab.models.base import Predictor  # noqa: E402
from digitlab.models.splitter import SplitNetwork, load_splitter  # noqa: E402
from digitlab.recognise import load_models  # noqa: E402
from digitlab.settings import DEFAULT_MODELS_DIR  # noqa: E402

SEEDS = (1, 2)
NUMBERS_PER_SEED = 400
C = 10
NETWORK_FEATURE = "split network log-odds"
FEATURES = (
    "width / line height",
    "logit whole",
    "logit weaker piece",
    "logit stronger piece",
    "ink rows crossed / line height",
    "strokes crossed",
    "ink in cut column / median",
    NETWORK_FEATURE,
    "intercept",
)


def digit_centres(sample: NumberSample, ink_shape: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """The horizontal centre of every true digit box, in the columns of the cleaned ink."""
    scale_x = size[0] / ink_shape[1]
    return np.array([(x + width / 2) / scale_x for x, _, width, _ in sample.boxes])


@dataclass(frozen=True)
class LabelledRegion:
    """A wide region of a number: its 28x28 model input, its ``split_features`` and whether it holds several digits."""

    model_input: np.ndarray
    features: np.ndarray
    several: bool


def wide_groups(ink: np.ndarray) -> tuple[list[np.ndarray], float]:
    """The masks of the ink's digit groups as ``segment_ink`` forms them, and the line's height."""
    labels, areas = ink_components(ink)
    boxes = ndimage.find_objects(labels)
    heights = np.array([box[0].stop - box[0].start for box in boxes])
    height = segment.line_height(heights, areas)
    group_of_label = np.concatenate([[-1], segment.group_components(boxes, areas)])
    return [group_of_label[labels] == group for group in np.unique(group_of_label[group_of_label >= 0])], height


def labelled_regions(
    ink: np.ndarray, centres: np.ndarray | None, judge: Predictor, splitter: SplitNetwork | None = None
) -> list[LabelledRegion]:
    """Every wide region of one line of ink that has a cut, and whether it holds several of the digits at ``centres``.

    With ``centres`` None the line holds no digit (a row of drawings), so no region holds several.
    """
    groups, height = wide_groups(ink)
    found = []

    def visit(region: np.ndarray) -> None:
        columns = np.flatnonzero(region.any(axis=0))
        if (columns[-1] - columns[0] + 1) / height <= segment.MAYBE_SEVERAL:
            return
        judged = segment.split_features(ink, region, height, judge, splitter)
        if judged is None:
            return
        held = 0 if centres is None else int(((centres >= columns[0]) & (centres < columns[-1] + 1)).sum())
        found.append(LabelledRegion(segment.digit_input(ink, region), judged[0], held > 1))
        if held > 1:
            visit(judged[1].left)
            visit(judged[1].right)

    for group in groups:
        visit(group)
    return found


def collect(judge: Predictor, splitter: SplitNetwork | None) -> tuple[np.ndarray, np.ndarray]:
    """The features and labels of the regions of the numbers composed with :data:`SEEDS`."""
    images, labels = load_mnist("train")
    pool = held_out_indices(len(images))
    found = []
    for seed in SEEDS:
        for sample in generate_numbers(images, labels, NUMBERS_PER_SEED, seed=seed, pool=pool):
            gray, size = segment.displayed_gray(sample.payload)
            ink = segment.number_ink(gray)
            found.extend(labelled_regions(ink, digit_centres(sample, ink.shape, size), judge, splitter))
    return np.array([region.features for region in found]), np.array([region.several for region in found])


def fit(features: np.ndarray, several: np.ndarray) -> np.ndarray:
    """The logistic regression's weights, one per feature, then the intercept (the order of SPLIT_WEIGHTS)."""
    model = LogisticRegression(C=C, max_iter=10_000).fit(features, several)
    return np.concatenate([model.coef_[0], model.intercept_])


def report(fitted: np.ndarray, shipped: np.ndarray, count: int, positives: int) -> bool:
    """Print the fitted weights beside the shipped ones; True when they agree to three decimals."""
    print(f"{count:,} regions, {positives:,} holding more than one digit")
    print(f"{'feature':32} {'fitted':>8} {'shipped':>8} {'diff':>8}")
    names = FEATURES if len(shipped) == len(FEATURES) else [name for name in FEATURES if name != NETWORK_FEATURE]
    for name, new, old in zip(names, fitted, shipped, strict=True):
        print(f"{name:32} {new:8.3f} {old:8.3f} {new - old:8.4f}")
    difference = np.abs(fitted - shipped).max()
    matches = bool(np.allclose(np.round(fitted, 3), shipped, rtol=0, atol=1e-9))
    verdict = "match" if matches else "do not match"
    print(f"largest absolute difference {difference:.4f}; rounded to three decimals they {verdict}")
    return matches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--without-network", action="store_true", help="fit SPLIT_WEIGHTS_WITHOUT_NETWORK, leaving the network out"
    )
    arguments = parser.parse_args()
    started = time.perf_counter()
    judge = load_models(["cnn"], DEFAULT_MODELS_DIR)["cnn"]
    splitter = None if arguments.without_network else load_splitter(DEFAULT_MODELS_DIR)
    shipped = segment.SPLIT_WEIGHTS_WITHOUT_NETWORK if arguments.without_network else segment.SPLIT_WEIGHTS
    features, several = collect(judge, splitter)
    matches = report(fit(features, several), np.array(shipped), len(several), int(several.sum()))
    print(f"{time.perf_counter() - started:.0f} s")
    return 0 if matches else 1


if __name__ == "__main__":
    sys.exit(main())
