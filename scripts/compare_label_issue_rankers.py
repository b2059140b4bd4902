"""Compare label-error rankers on planted label flips in the held-out part of the MNIST training set.

The shipped SVM, MLP and CNN were trained on 55,000 training images and all held
out the same 5,000 (``validation_split`` with seed 0; the script takes the images
none of the three fitted on from their manifest entries with
``digitlab.checks.realworld.held_out_pool``, which are those 5,000), so their
probabilities there are out-of-sample. The
held-out labels did choose one number per model (the SVM's calibration
temperature, the networks' early-stopping epoch), which is far from fitting
them. The script averages the three models' probabilities there, as the app
does, plants label flips (uniform: to a random other digit; confusable: to the
digit the models find likeliest after the true label), and measures how many
flips each ranking finds in its first k images and how well each flag set
matches them. Genuine MNIST label errors among the 5,000 count as false
positives for every method alike. The MNIST test set is not used.

Run from the repository root: ``.venv/bin/python scripts/compare_label_issue_rankers.py``
(``--cache PATH`` keeps the probabilities between runs; without it they are recomputed).
"""

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from functools import reduce
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cleanlab.filter  # noqa: E402
import cleanlab.rank  # noqa: E402

from digitlab import load_model  # noqa: E402
from digitlab.checks.realworld import held_out_pool  # noqa: E402
from digitlab.data.mnist import load_mnist  # noqa: E402
from digitlab.formatting import markdown_table  # noqa: E402
from digitlab.insight import label_issues  # noqa: E402
from digitlab.persistence import read_manifest  # noqa: E402

MODELS = ("svm", "mlp", "cnn")
FRACTIONS = (0.01, 0.02, 0.05)
KINDS = ("uniform", "confusable")
SEEDS = (0, 1, 2, 3, 4)
SCORES = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given")


def held_out_probabilities(cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """The consensus probabilities of the shipped models on the 5,000 held-out training images, and their labels."""
    images, labels = load_mnist("train", download=False)
    entries = read_manifest().models
    # Only images that none of the models fitted on keep every model's probabilities out-of-sample.
    held_out = reduce(np.intersect1d, (held_out_pool(entries, name, images, labels) for name in MODELS))
    # The cache is keyed by the models' checksums so a retrained model is never compared on stale probabilities.
    key = hashlib.sha256("".join(entries[name].sha256 for name in MODELS).encode()).hexdigest()[:16]
    if cache is not None and cache.exists():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                return stored["consensus"], labels[held_out].astype(np.int64)
    per_model = {}
    for name in MODELS:
        started = time.perf_counter()
        per_model[name] = load_model(name).predict_proba(images[held_out])
        print(f"{name}: probabilities on {len(held_out)} held-out images in {time.perf_counter() - started:.0f} s")
    mean = label_issues.consensus(per_model, list(MODELS))
    if cache is not None:
        np.savez(cache, consensus=mean, key=key)
    return mean, labels[held_out].astype(np.int64)


def plant_flips(
    probabilities: np.ndarray, labels: np.ndarray, fraction: float, kind: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Labels with ``fraction`` of them flipped to another digit, and the flipped indices."""
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(labels), round(fraction * len(labels)), replace=False))
    noisy = labels.copy()
    if kind == "uniform":
        # Adding 1-9 modulo 10 gives every other digit the same chance.
        noisy[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    else:
        others = probabilities[flipped].copy()
        others[np.arange(len(flipped)), labels[flipped]] = -np.inf
        noisy[flipped] = others.argmax(axis=1)
    return noisy, flipped


def ranked_by_score(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Every image, ordered by a cleanlab label-quality score, lowest (most suspect) first."""

    def rank(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
        scores = cleanlab.rank.get_label_quality_scores(labels, probabilities, method=method)
        return np.argsort(scores, kind="stable")

    return rank


def ranked_flags(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Only the images cleanlab's default filter flags, ordered by a label-quality score."""

    def rank(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return cleanlab.filter.find_label_issues(labels, probabilities, return_indices_ranked_by=method, n_jobs=1)

    return rank


def flags_by(filter_by: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """cleanlab's boolean mask of label issues for one ``filter_by``."""

    def flag(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return cleanlab.filter.find_label_issues(labels, probabilities, filter_by=filter_by, n_jobs=1)

    return flag


def handwritten_issues(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """digitlab's hand-written confident learning as it stood before it moved onto cleanlab, kept here to compare.

    Ranking by the normalised margin (given label's probability minus the largest other one), ties by index;
    flagged where the most probable digit is not the label; confidently flagged where, in addition, that digit's
    probability reaches its class threshold (the mean probability of the class over the images labelled with it).
    """
    rows = np.arange(len(labels))
    thresholds = np.array([probabilities[labels == digit, digit].mean() for digit in range(probabilities.shape[1])])
    others = probabilities.copy()
    others[rows, labels] = -np.inf
    margin = probabilities[rows, labels] - others.max(axis=1)
    suggested = probabilities.argmax(axis=1)
    flagged = suggested != labels
    return {
        "ranking": np.lexsort((rows, margin)),
        "flagged": flagged,
        "confidently_flagged": flagged & (probabilities[rows, suggested] >= thresholds[suggested]),
    }


RANKERS = {
    "digitlab hand-written ranking (normalised margin)": lambda p, y: handwritten_issues(p, y)["ranking"],
    "digitlab.insight.label_issues ranking (on cleanlab)": lambda p, y: label_issues.find_label_issues(p, y).ranking,
    **{f"cleanlab.rank {method}": ranked_by_score(method) for method in SCORES},
    **{f"cleanlab find_label_issues ranked by {method}": ranked_flags(method) for method in SCORES},
}
FLAGGERS = {
    "digitlab hand-written flagged": lambda p, y: handwritten_issues(p, y)["flagged"],
    "digitlab hand-written confidently_flagged": lambda p, y: handwritten_issues(p, y)["confidently_flagged"],
    "digitlab.insight.label_issues flagged (on cleanlab)": lambda p, y: label_issues.find_label_issues(p, y).flagged,
    "digitlab.insight.label_issues confidently_flagged (on cleanlab)": lambda p, y: (
        label_issues.find_label_issues(p, y).confidently_flagged
    ),
    **{f"cleanlab filter_by={name}" + (" (default)" if name == FILTERS[0] else ""): flags_by(name) for name in FILTERS},
}


def ranking_figures(ranking: np.ndarray, flipped: np.ndarray) -> tuple[float, float, float]:
    """Recall at k and 2k (k = number of flips), and precision at 2k over the images actually listed."""
    k, truth = len(flipped), set(flipped.tolist())
    hits_k = len(truth.intersection(ranking[:k].tolist()))
    hits_2k = len(truth.intersection(ranking[: 2 * k].tolist()))
    return hits_k / k, hits_2k / k, hits_2k / max(1, min(2 * k, len(ranking)))


def flag_figures(mask: np.ndarray, flipped: np.ndarray) -> tuple[float, float, float]:
    """Size, precision and recall of a flag set."""
    hits = int(mask[flipped].sum())
    return float(mask.sum()), hits / max(1, int(mask.sum())), hits / len(flipped)


def settings() -> list[tuple[str, float]]:
    return [(kind, fraction) for kind in KINDS for fraction in FRACTIONS]


def measure(probabilities: np.ndarray, labels: np.ndarray) -> tuple[dict, dict]:
    """Mean figures over the seeds for every method and setting."""
    ranks = {name: {} for name in RANKERS}
    flags = {name: {} for name in FLAGGERS}
    for setting in settings():
        runs = [plant_flips(probabilities, labels, setting[1], setting[0], seed) for seed in SEEDS]
        for name, rank in RANKERS.items():
            ranks[name][setting] = np.mean([ranking_figures(rank(probabilities, y), f) for y, f in runs], axis=0)
        for name, flag in FLAGGERS.items():
            flags[name][setting] = np.mean([flag_figures(flag(probabilities, y), f) for y, f in runs], axis=0)
    return ranks, flags


def unplanted_flag_sizes(probabilities: np.ndarray, labels: np.ndarray) -> str:
    """How many images each flag set names before any flip is planted: genuine label errors and model mistakes."""
    return "\n".join(f"- {name}: {int(flag(probabilities, labels).sum())}" for name, flag in FLAGGERS.items())


def setting_names(count: int) -> list[str]:
    return [f"{kind} {fraction:.0%} ({round(fraction * count)})" for kind, fraction in settings()]


def ranking_table(ranks: dict, count: int) -> str:
    rows = [
        [name, *(f"{r_k:.3f} / {r_2k:.3f} / {p_2k:.3f}" for r_k, r_2k, p_2k in figures.values())]
        for name, figures in ranks.items()
    ]
    return markdown_table(["method", *setting_names(count)], rows)


def flag_table(flags: dict, count: int) -> str:
    rows = [
        [name, *(f"{size:.0f} / {precision:.3f} / {recall:.3f}" for size, precision, recall in figures.values())]
        for name, figures in flags.items()
    ]
    return markdown_table(["method", *setting_names(count)], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="an .npz file to keep the held-out probabilities in")
    arguments = parser.parse_args()
    probabilities, labels = held_out_probabilities(arguments.cache)
    ranks, flags = measure(probabilities, labels)
    print(f"\n{len(labels)} held-out training images. Flag set sizes with no planted flip (genuine label errors")
    print("and model mistakes, which count against every method alike):\n")
    print(unplanted_flag_sizes(probabilities, labels))
    print()
    print(f"Means over seeds {', '.join(map(str, SEEDS))}; column headers give the kind, rate and number k of flips.\n")
    print("Rankings: recall at k / recall at 2k / precision at 2k (at k, precision equals recall)\n")
    print(ranking_table(ranks, len(labels)))
    print("\nFlag sets: size / precision / recall\n")
    print(flag_table(flags, len(labels)))


if __name__ == "__main__":
    main()
