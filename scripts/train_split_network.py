"""Train the split network (:mod:`digitlab.models.splitter`) and save it, with its record, beside the shipped models.

Its examples are the wide regions that reading a number meets, found as
``scripts/fit_split_weights.py`` finds them (:func:`fit_split_weights.labelled_regions`), read by the shipped CNN:

- the regions of 800 4-digit numbers for each of seeds 100 to 109
  (:func:`digitlab.checks.realworld.generate_numbers`), composed from the MNIST training digits *outside* the
  shipped models' held-out split, so the numbers that the README reports and ``SPLIT_WEIGHTS`` are fitted on
  (composed from held-out digits) stay unseen; a region is positive when it holds more than one digit's centre;
- the wide regions of 1,500 rows of three letters, symbols and doodles drawn from the *training* fonts
  (:func:`digitlab.data.synthetic.non_digit_drawings`), set side by side as ``scripts/non_numbers.py`` sets the
  validation-font ones; all negative, as they hold no digit. Without them the network takes wide drawings for
  touching digits, and more rows of drawings are read as numbers.

A tenth of the regions is held out to report the network's AUROC in its record. Afterwards refit
``SPLIT_WEIGHTS`` with ``scripts/fit_split_weights.py``.

Run from the repository root (about 20 minutes on two cores with ``--workers 2``):
``DIGITLAB_DATA_DIR=/path/to/mnist .venv/bin/python scripts/train_split_network.py [--workers 2] [--out models]``.
"""

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fit_split_weights import digit_centres, labelled_regions  # noqa: E402
from non_numbers import row_of, scaled_ink  # noqa: E402

from digitlab.checks.realworld import generate_numbers, held_out_indices  # noqa: E402
from digitlab.data import synthetic  # noqa: E402
from digitlab.data.mnist import load_mnist  # noqa: E402
from digitlab.errors import NoDigitFoundError  # noqa: E402
from digitlab.imaging.clean import clean_ink  # noqa: E402
from digitlab.imaging.segment import displayed_gray, number_ink  # noqa: E402
from digitlab.models.splitter import SPLITTER_ARTIFACT, SplitNetwork, SplitterRecord, write_splitter  # noqa: E402
from digitlab.recognise import load_models  # noqa: E402
from digitlab.settings import DEFAULT_MODELS_DIR  # noqa: E402

NUMBER_SEEDS = tuple(range(100, 110))
NUMBERS_PER_SEED = 800
NON_DIGIT_ROWS = 1500
NON_DIGIT_SEED = 1234
VALIDATION_SHARE = 0.1
SPLIT_SEED = 0


def number_regions(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The model inputs of the wide regions of one seed's numbers, and whether each holds several digits."""
    judge = load_models(["cnn"], DEFAULT_MODELS_DIR)["cnn"]
    images, labels = load_mnist("train")
    pool = np.setdiff1d(np.arange(len(images)), held_out_indices(len(images)))
    found = []
    for sample in generate_numbers(images, labels, NUMBERS_PER_SEED, seed=seed, pool=pool):
        gray, size = displayed_gray(sample.payload)
        ink = number_ink(gray)
        found.extend(labelled_regions(ink, digit_centres(sample, ink.shape, size), judge))
    return np.stack([region.model_input for region in found]), np.array([region.several for region in found])


def non_digit_regions() -> np.ndarray:
    """The model inputs of the wide regions of rows of three training-font drawings (none holds several digits)."""
    judge = load_models(["cnn"], DEFAULT_MODELS_DIR)["cnn"]
    drawings = synthetic.non_digit_drawings(synthetic.TRAINING_FONTS, NON_DIGIT_ROWS * 3, NON_DIGIT_SEED)
    scaled = (scaled_ink(np.asarray(drawing.image, dtype=np.float32)) for drawing in drawings)
    inks = [ink for ink in scaled if ink is not None]
    found = []
    for start in range(0, len(inks) - 2, 3):
        try:
            found.extend(labelled_regions(clean_ink(row_of(inks[start : start + 3])), None, judge))
        except NoDigitFoundError:
            continue
    return np.stack([region.model_input for region in found])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="processes collecting regions (default 2)")
    parser.add_argument("--out", default=str(DEFAULT_MODELS_DIR), help="models folder to write (default models/)")
    arguments = parser.parse_args()
    started = time.perf_counter()
    with ProcessPoolExecutor(arguments.workers, mp_context=get_context("spawn")) as pool:
        drawn = pool.submit(non_digit_regions)
        parts = []
        for seed, part in zip(NUMBER_SEEDS, pool.map(number_regions, NUMBER_SEEDS), strict=True):
            parts.append(part)
            print(f"seed {seed}: {len(part[1]):,} regions, {int(part[1].sum()):,} holding several digits", flush=True)
        drawn_inputs = drawn.result()
    inputs = np.concatenate([part[0] for part in parts] + [drawn_inputs])
    several = np.concatenate([part[1] for part in parts] + [np.zeros(len(drawn_inputs), dtype=bool)])
    print(f"{len(drawn_inputs):,} regions of rows of drawings; {time.perf_counter() - started:.0f} s", flush=True)

    order = np.random.default_rng(SPLIT_SEED).permutation(len(several))
    validation, training = np.split(order, [round(VALIDATION_SHARE * len(order))])
    network = SplitNetwork()
    fit_inputs, fit_several = inputs[training], several[training]
    network.fit(fit_inputs[fit_several], fit_inputs[~fit_several])
    auroc = float(roc_auc_score(several[validation], network.score(inputs[validation])))
    record = SplitterRecord(
        artifact=SPLITTER_ARTIFACT,
        sha256="0" * 64,
        hyperparameters=network.get_params(),
        training={
            "number_seeds": list(NUMBER_SEEDS),
            "numbers_per_seed": NUMBERS_PER_SEED,
            "non_digit_rows": NON_DIGIT_ROWS,
            "number_regions": int(sum(len(part[1]) for part in parts)),
            "several_digit_regions": int(several.sum()),
            "drawing_regions": len(drawn_inputs),
            "validation_regions": len(validation),
            "validation_auroc": round(auroc, 4),
            "seconds": round(time.perf_counter() - started),
        },
    )
    record = write_splitter(network, record, arguments.out)
    print(f"validation AUROC {auroc:.4f} on {len(validation):,} regions; wrote {Path(arguments.out) / record.artifact}")
    print(f"{time.perf_counter() - started:.0f} s; now refit SPLIT_WEIGHTS with scripts/fit_split_weights.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
