"""Compare ways of deciding "not a digit" on validation digits and non-digits that no model trained on.

Every method gives each model input a score, higher meaning more digit-like:
the CNN's largest softmax probability, the ensemble's, how many of the SVM,
MLP and CNN agree with the ensemble's digit (ties broken by the ensemble's
probability), the CNN's largest logit and its energy (log-sum-exp of the
logits), the Mahalanobis distance and the mean distance to the nearest
training images in the CNN's penultimate-layer features, and the trained
not-a-digit detector's score when ``models/detector.json`` exists.

Validation digits are the 5,000 MNIST training images the shipped models hold
out (``validation_split(60000, 5000, 0)``), some of them run through
``preprocess`` as uploads are, and digits drawn from the validation fonts of
:mod:`digitlab.data.synthetic`; validation non-digits are letters, symbols and
doodles drawn from those fonts, all made by :func:`digitlab.detection.build_data`
with seed 2. The Mahalanobis and nearest-neighbour methods are fitted on a
seeded sample of the other MNIST training images. MNIST's test set is not
used. For each method the table gives the AUROC (digits against non-digits)
and the share of non-digits refused, overall and per kind, when the threshold
refuses at most 0.3 % of each kind of digit (``threshold_for``).

Run from the repository root: ``.venv/bin/python scripts/compare_not_a_digit_scores.py``
(``--help`` lists the counts; the defaults take a few minutes on two CPU cores).
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy.special import logsumexp  # noqa: E402
from sklearn.covariance import EmpiricalCovariance  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

from digitlab.data import synthetic  # noqa: E402
from digitlab.data.mnist import CLASSES, load_mnist  # noqa: E402
from digitlab.detection import (  # noqa: E402
    HELD_OUT_SEED,
    HELD_OUT_SIZE,
    REFUSAL_BUDGET,
    VALIDATION_SEED,
    DetectorData,
    build_data,
    threshold_for,
)
from digitlab.formatting import markdown_table  # noqa: E402
from digitlab.insight.neighbours import penultimate_embedding  # noqa: E402
from digitlab.models.base import validation_split  # noqa: E402
from digitlab.models.detector import RECORD_NAME, load_detector  # noqa: E402
from digitlab.persistence import load_model, resolve_models_dir  # noqa: E402

MEMBERS = ("svm", "mlp", "cnn")
NON_DIGIT_KINDS = ("letter", "symbol", "doodle")
FIT_SEED = 0
# The softmax of the recovered logits must give back the CNN's own probabilities to within this.
LOGIT_TOLERANCE = 1e-4
# Guards the L2 normalisation of a feature vector that the ReLU left all zero.
NORM_FLOOR = 1e-12


def validation_data(images: np.ndarray, held_out: np.ndarray, arguments: argparse.Namespace) -> DetectorData:
    """Held-out MNIST digits, preprocessed MNIST and font digits, and non-digits, all from the validation fonts."""
    return build_data(
        images[held_out],
        fonts=synthetic.VALIDATION_FONTS,
        non_digit_count=arguments.non_digits,
        font_digit_count=arguments.font_digits,
        preprocessed_count=arguments.preprocessed_digits,
        rendered_count=arguments.rendered_digits,
        seed=VALIDATION_SEED,
    )


def fitting_sample(
    images: np.ndarray, labels: np.ndarray, training_part: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of the MNIST training images the shipped models fitted on, with their labels."""
    chosen = np.sort(
        np.random.default_rng(FIT_SEED).choice(training_part, min(size, len(training_part)), replace=False)
    )
    return images[chosen], labels[chosen].astype(np.int64)


def cnn_logits(cnn, features: np.ndarray) -> np.ndarray:
    """The CNN's logits: its penultimate features through the kernel and bias of its last (softmax) layer."""
    kernel, bias = cnn.network_.layers[-1].get_weights()
    return features.astype(np.float64) @ kernel.astype(np.float64) + bias.astype(np.float64)


def check_logits(logits: np.ndarray, probabilities: np.ndarray) -> None:
    """Stop rather than report figures for logits that do not give back the CNN's probabilities."""
    recovered = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    gap = float(np.abs(recovered - probabilities).max())
    if gap > LOGIT_TOLERANCE:
        raise SystemExit(f"The recovered CNN logits miss its probabilities by {gap:.2g}; the network has changed.")


def agreement(ensemble_probabilities: np.ndarray, member_probabilities: dict[str, np.ndarray]) -> np.ndarray:
    """How many members read the ensemble's digit, plus the ensemble's probability to break ties.

    The probability is at most 1 and at least 1/10, so adding it to the count
    never lifts an image above one with more agreeing members.
    """
    digit = ensemble_probabilities.argmax(axis=1)
    agreeing = sum(
        (probabilities.argmax(axis=1) == digit).astype(np.float64) for probabilities in member_probabilities.values()
    )
    return agreeing + ensemble_probabilities.max(axis=1)


def mahalanobis_scorer(features: np.ndarray, labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Negative squared Mahalanobis distance to the nearest class mean, with one covariance shared by the classes."""
    features = features.astype(np.float64)
    means = np.stack([features[labels == digit].mean(axis=0) for digit in range(CLASSES)])
    # The pseudo-inverse that EmpiricalCovariance keeps copes with features the ReLU leaves always at zero.
    precision = EmpiricalCovariance(assume_centered=True).fit(features - means[labels]).precision_

    def score(queries: np.ndarray) -> np.ndarray:
        queries = queries.astype(np.float64)
        distances = []
        for mean in means:
            centred = queries - mean
            distances.append(np.einsum("ij,jk,ik->i", centred, precision, centred))
        return -np.min(distances, axis=0)

    return score


def l2_normalised(features: np.ndarray) -> np.ndarray:
    features = features.astype(np.float64)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), NORM_FLOOR)


def neighbour_scorer(features: np.ndarray, neighbours: int) -> Callable[[np.ndarray], np.ndarray]:
    """Negative mean Euclidean distance between L2-normalised features and their nearest training features."""
    index = NearestNeighbors(n_neighbors=neighbours, algorithm="brute").fit(l2_normalised(features))

    def score(queries: np.ndarray) -> np.ndarray:
        distances, _ = index.kneighbors(l2_normalised(queries))
        return -distances.mean(axis=1)

    return score


def classifier_scores(images: np.ndarray, fit_images: np.ndarray, fit_labels: np.ndarray, neighbours: int) -> dict:
    """Every score that comes from the shipped classifiers, for every image, with what each step took."""
    ensemble = load_model("ensemble")
    members = {name: ensemble.members_[name] for name in MEMBERS}
    started = time.perf_counter()
    member_probabilities = {name: model.predict_proba(images) for name, model in members.items()}
    ensemble_probabilities = ensemble.predict_proba(images)
    print(f"Classifier probabilities: {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    cnn = members["cnn"]
    features = penultimate_embedding(cnn.network_, images)
    fit_features = penultimate_embedding(cnn.network_, fit_images)
    logits = cnn_logits(cnn, features)
    check_logits(logits, member_probabilities["cnn"])
    scores = {
        "CNN max softmax probability": member_probabilities["cnn"].max(axis=1),
        "Ensemble max probability": ensemble_probabilities.max(axis=1),
        "Agreement of SVM/MLP/CNN with the ensemble (+ ensemble probability)": agreement(
            ensemble_probabilities, member_probabilities
        ),
        "CNN max logit": logits.max(axis=1),
        "CNN energy (log-sum-exp of logits)": logsumexp(logits, axis=1),
        "Mahalanobis, CNN penultimate features (tied covariance)": mahalanobis_scorer(fit_features, fit_labels)(
            features
        ),
        f"{neighbours}-NN mean distance, L2-normalised CNN penultimate features": neighbour_scorer(
            fit_features, neighbours
        )(features),
    }
    print(f"Features, logits, Mahalanobis and nearest neighbours: {time.perf_counter() - started:.0f} s")
    return scores


def detector_scores(images: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The trained detector's scores and its recorded threshold, or None when no detector has been saved."""
    folder = resolve_models_dir(None)
    if not (folder / RECORD_NAME).exists():
        print(f"Note: no {folder / RECORD_NAME}, so the trained detector is left out of the comparison.")
        return None
    screened = load_detector(folder)
    return screened.detector.score(images), screened.record.threshold


def refused_shares(scores: np.ndarray, threshold: float, data: DetectorData) -> list[float]:
    """The share of non-digits refused at ``threshold``, overall and for each kind."""
    non_digit_scores = scores[len(data.digits) :]
    refused = non_digit_scores < threshold
    return [float(refused.mean())] + [float(refused[data.non_digit_kinds == kind].mean()) for kind in NON_DIGIT_KINDS]


def figures(scores: np.ndarray, data: DetectorData) -> tuple[float, float, list[float]]:
    """AUROC, the threshold that keeps within the refusal budget for every digit source, and the shares refused."""
    digit_scores = scores[: len(data.digits)]
    by_source = {source: digit_scores[data.digit_sources == source] for source in np.unique(data.digit_sources)}
    threshold = threshold_for(by_source, REFUSAL_BUDGET)
    targets = np.concatenate([np.ones(len(data.digits)), np.zeros(len(data.non_digits))])
    return float(roc_auc_score(targets, scores)), threshold, refused_shares(scores, threshold, data)


def percent(share: float) -> str:
    return f"{100 * share:.1f} %"


def comparison_table(scores: dict[str, np.ndarray], data: DetectorData) -> str:
    rows = []
    for name, values in scores.items():
        auroc, _, refused = figures(values, data)
        rows.append([name, f"{auroc:.4f}", *(percent(share) for share in refused)])
    headers = [
        "score (higher = more digit-like)",
        "AUROC",
        "non-digits refused",
        *(f"{kind}s" for kind in NON_DIGIT_KINDS),
    ]
    return markdown_table(headers, rows)


def counted(values: np.ndarray, suffix: str = "") -> str:
    """ "1,234 a, 567 b" for the distinct values of an array and how often each occurs."""
    names, counts = np.unique(values, return_counts=True)
    return ", ".join(f"{count:,} {name}{suffix}" for name, count in zip(names, counts, strict=True))


def data_summary(data: DetectorData) -> str:
    return (
        f"Validation digits: {counted(data.digit_sources)}. Non-digits: {counted(data.non_digit_kinds, 's')} "
        f"({data.refused_by_preprocessing:,} more were refused by preprocessing and are not scored)."
    )


def arguments_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--non-digits", type=int, default=3000, help="non-digits to draw (default 3000)")
    parser.add_argument("--font-digits", type=int, default=1500, help="digits to draw from fonts (default 1500)")
    parser.add_argument(
        "--preprocessed-digits", type=int, default=2000, help="held-out MNIST digits to preprocess (default 2000)"
    )
    parser.add_argument(
        "--rendered-digits",
        type=int,
        default=1000,
        help="held-out MNIST digits rendered as scans, forms, drawings and photos (default 1000)",
    )
    parser.add_argument("--fit-size", type=int, default=10_000, help="MNIST training images to fit on (default 10000)")
    parser.add_argument("--neighbours", type=int, default=10, help="k of the nearest-neighbour score (default 10)")
    return parser


def main() -> None:
    arguments = arguments_parser().parse_args()
    started = time.perf_counter()
    import keras

    # Inference uses no randomness, but a fixed seed rules it out as a cause of differing runs.
    keras.utils.set_random_seed(FIT_SEED)
    images, labels = load_mnist("train")
    training_part, held_out = validation_split(len(images), HELD_OUT_SIZE, HELD_OUT_SEED)
    step = time.perf_counter()
    data = validation_data(images, held_out, arguments)
    print(f"Validation data drawn and preprocessed: {time.perf_counter() - step:.0f} s")
    print(data_summary(data))
    fit_images, fit_labels = fitting_sample(images, labels, training_part, arguments.fit_size)
    everything = np.concatenate([data.digits, data.non_digits])
    scores = classifier_scores(everything, fit_images, fit_labels, arguments.neighbours)
    detector = detector_scores(everything)
    if detector is not None:
        scores["Trained not-a-digit detector"] = detector[0]
    print(
        f"\nThresholds refuse at most {REFUSAL_BUDGET:.1%} of the digits of each source; "
        f"Mahalanobis and {arguments.neighbours}-NN are fitted on {len(fit_images):,} MNIST training images.\n"
    )
    print(comparison_table(scores, data))
    if detector is not None:
        refused = refused_shares(detector[0], detector[1], data)
        print(
            f"\nAt its own recorded threshold ({detector[1]:.3f}) the detector refuses {percent(refused[0])} "
            "of these non-digits."
        )
    print(f"\nTook {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
