import io
import re
import warnings
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageOps

from digitlab.checks import realworld
from digitlab.data.mnist import data_checksum
from digitlab.data.uci import uci_digits
from digitlab.errors import DigitlabError
from digitlab.imaging.decode import load_image, to_grayscale
from digitlab.imaging.preprocess import preprocess
from digitlab.imaging.renderings import CANVAS_PEN_SHARE
from digitlab.manifest import Manifest, ModelEntry
from digitlab.models.base import validation_split
from digitlab.models.detector import Verdict
from digitlab.models.svm import SVMClassifier
from digitlab.persistence import read_manifest, write_manifest
from digitlab.training import training_subset
from tests.support import PROJECT_ROOT

SHIPPED_MODELS = PROJECT_ROOT / "models"


class ReadsEverythingAs:
    """A stand-in model that reads every input as the same digit."""

    def __init__(self, digit: int):
        self.digit = digit

    def predict(self, images):
        return np.full(len(images), self.digit)

    def predict_proba(self, images):
        return np.eye(10)[self.predict(images)]


class ScoresBy:
    """A stand-in detector whose score is the ink's mean brightness, with a threshold: enough to count refusals."""

    def __init__(self, threshold: float):
        self.record = type("Record", (), {"threshold": threshold})()
        self.detector = self

    def score(self, images):
        return np.asarray(images, dtype=float).mean(axis=(1, 2))


def recorded_entry(mnist_train, *, seed=0, train_size=60000, validation_size=5000, members=None, drawings=0):
    """A manifest entry as ``train_and_record`` writes it, for a run on ``train_size`` MNIST images drawn with ``seed``.

    ``drawings`` appends that many extra images, as a run trained with the user's saved drawings does.
    """
    images, labels = training_subset(*mnist_train, train_size, seed)
    if drawings:
        images = np.concatenate([images, np.zeros((drawings, 28, 28), dtype=images.dtype)])
        labels = np.concatenate([labels, np.zeros(drawings, dtype=labels.dtype)])
    hyperparameters = {"validation_size": validation_size, "seed": seed}
    if members is not None:
        hyperparameters["members"] = members
    return ModelEntry(
        artifact="model.keras",
        sha256="0" * 64,
        hyperparameters=hyperparameters,
        seed=seed,
        train_size=len(images),
        train_data_sha256=data_checksum(images, labels),
    )


def fitted_indices(entry, count=60000):
    """The MNIST training indices a model with this entry fitted on, by the training code's own draw and split."""
    everything = np.arange(count)
    subset = training_subset(everything, everything, entry.train_size, entry.seed)[0]
    split = entry.hyperparameters
    fit_positions = validation_split(len(subset), split["validation_size"], split["seed"])[0]
    return subset[fit_positions]


@pytest.fixture(scope="module")
def shipped_pool(mnist_train):
    return realworld.held_out_pool(read_manifest(SHIPPED_MODELS).models, "cnn", *mnist_train)


@pytest.fixture(scope="module")
def samples(mnist_train, shipped_pool):
    return realworld.generate(*mnist_train, count=6, seed=5, pool=shipped_pool)


@pytest.fixture(scope="module")
def small_model(small_train):
    """An SVM fitted in a second or two on 600 training digits."""
    with warnings.catch_warnings():
        # 60 calibration images leave some digit with fewer examples than calibration folds.
        warnings.filterwarnings("ignore", message="The least populated class")
        return SVMClassifier(validation_size=100).fit(*small_train)


def test_generation_is_seeded_and_covers_every_source(mnist_train, samples, shipped_pool):
    again = realworld.generate(*mnist_train, count=6, seed=5, pool=shipped_pool)
    assert [sample.payload for sample in again] == [sample.payload for sample in samples]
    other = realworld.generate(*mnist_train, count=6, seed=6, pool=shipped_pool)
    assert [sample.payload for sample in other] != [sample.payload for sample in samples]
    assert sorted({sample.source for sample in samples}) == sorted(realworld.SOURCES)
    assert len(samples) == 6 * len(realworld.SOURCES)


def test_samples_come_from_digits_the_shipped_models_held_out(mnist_train, samples):
    held_out = set(realworld.held_out_indices(len(mnist_train[0])).tolist())
    assert len(held_out) == realworld.HELD_OUT_SIZE
    for sample in samples:
        assert sample.mnist_index in held_out
        assert sample.label == mnist_train[1][sample.mnist_index]


def test_every_shipped_model_keeps_todays_held_out_digits(mnist_train):
    # The shipped models hold out 5,000 of all 60,000 images with seed 0, so their results must not move.
    entries = read_manifest(SHIPPED_MODELS).models
    assert set(entries) >= {"svm", "mlp", "cnn", "ensemble"}
    for name in entries:
        pool = realworld.held_out_pool(entries, name, *mnist_train)
        np.testing.assert_array_equal(pool, realworld.held_out_indices(len(mnist_train[0])))


@pytest.mark.parametrize(("seed", "train_size"), [(3, 60000), (0, 20000), (3, 20000)])
def test_a_model_trained_on_another_split_is_scored_only_on_digits_it_never_fitted_on(
    mnist_train, monkeypatch, tmp_path, seed, train_size
):
    entry = recorded_entry(mnist_train, seed=seed, train_size=train_size)
    fitted = fitted_indices(entry)
    # The shipped split is not held out by this model: the bug scored it on digits it had fitted on.
    assert np.isin(realworld.held_out_indices(), fitted).any()
    pool = realworld.held_out_pool({"cnn": entry}, "cnn", *mnist_train)
    assert not np.isin(pool, fitted).any()
    assert len(pool) + len(fitted) == len(mnist_train[0])
    write_manifest(Manifest(models={"cnn": entry}), tmp_path)
    monkeypatch.setattr("digitlab.recognise.load_models", lambda names, models_dir: {"cnn": ReadsEverythingAs(1)})
    scored = []
    monkeypatch.setattr(realworld, "evaluate", lambda samples, model, detector: scored.extend(samples) or {})
    report = realworld.run_realworld("cnn", count=5, seed=0, models_dir=tmp_path)
    assert report["held_out_images"] == len(pool)
    # Font-drawn digits and non-digits come from no MNIST image (index -1); the rest from the model's own pool.
    rendered = [sample.mnist_index for sample in scored if sample.mnist_index >= 0]
    assert len(rendered) == 5 * len(realworld.SOURCES)
    assert not np.isin(rendered, fitted).any()


def test_an_entry_that_cannot_say_what_it_trained_on_is_refused(mnist_train):
    entry = recorded_entry(mnist_train)
    older = replace(entry, hyperparameters={"seed": 0})
    with pytest.raises(DigitlabError, match="does not record hyperparameters.validation_size.*retrain it"):
        realworld.held_out_pool({"cnn": older}, "cnn", *mnist_train)
    with pytest.raises(DigitlabError, match="does not record train_data_sha256"):
        realworld.held_out_pool({"cnn": replace(entry, train_data_sha256=None)}, "cnn", *mnist_train)
    with_drawings = recorded_entry(mnist_train, train_size=10000, drawings=40)
    with pytest.raises(DigitlabError, match="not trained on the MNIST training set alone.*saved drawings"):
        realworld.held_out_pool({"cnn": with_drawings}, "cnn", *mnist_train)
    with pytest.raises(DigitlabError, match="no entry for cnn"):
        realworld.held_out_pool({}, "cnn", *mnist_train)


def test_an_ensembles_pool_is_unseen_by_it_and_by_every_member(mnist_train):
    entries = {
        "svm": recorded_entry(mnist_train, seed=1, train_size=20000),
        "mlp": recorded_entry(mnist_train, seed=2),
        "cnn": recorded_entry(mnist_train, seed=0),
        "ensemble": recorded_entry(mnist_train, seed=0, members=["svm", "mlp", "cnn"]),
    }
    pool = realworld.held_out_pool(entries, "ensemble", *mnist_train)
    assert len(pool) > 0
    for name in entries:
        assert np.isin(pool, realworld.held_out_pool(entries, name, *mnist_train)).all()
        assert not np.isin(pool, fitted_indices(entries[name])).any()


@pytest.mark.parametrize(
    ("source", "shortest", "longest"),
    [
        ("envelope-scan", 12, 24),
        ("binarised-form", 16, 48),
        ("canvas-drawing", 90, 1024),
        ("phone-photo", 300, 1200),
        ("thin-pen", 180, 1280),
        ("thick-pen", 72, 768),
    ],
)
def test_each_source_is_an_ordinary_image_at_its_own_size(samples, source, shortest, longest):
    for sample in (sample for sample in samples if sample.source == source):
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(sample.payload)))
        assert shortest <= min(image.size) and max(image.size) <= longest
        assert sample.conditions
    binarised = [sample for sample in samples if sample.source == "binarised-form"]
    assert all(
        set(np.unique(np.asarray(Image.open(io.BytesIO(s.payload)).convert("L")))) <= {0, 255} for s in binarised
    )


def test_every_sample_goes_through_preprocessing(samples):
    for sample in samples:
        model_input = preprocess(sample.payload)
        assert model_input.shape == (28, 28) and model_input.max() > 200


def test_evaluation_counts_per_source_and_overall(samples):
    report = realworld.evaluate(samples, ReadsEverythingAs(1))
    labels = np.array([sample.label for sample in samples])
    assert report["overall"]["accuracy"] == pytest.approx((labels == 1).mean())
    for source, row in report["sources"].items():
        chosen = np.array([sample.source == source for sample in samples])
        assert row["samples"] == chosen.sum()
        assert row["accuracy"] == pytest.approx((labels[chosen] == 1).mean())
    assert report["hardest_source"] == min(report["sources"], key=lambda name: report["sources"][name]["accuracy"])
    assert len(report["mistakes"]) == (labels != 1).sum()
    assert "| overall |" in realworld.report_table(report, "stub")


def test_naive_input_is_a_plain_grayscale_resize(samples):
    photo = next(sample for sample in samples if sample.source == "phone-photo")
    naive = realworld.naive_input(photo.payload)
    expected = Image.open(io.BytesIO(photo.payload)).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(naive, np.asarray(expected))


def test_preprocessing_reads_far_more_than_a_naive_resize(mnist_train, small_model, shipped_pool):
    report = realworld.evaluate(realworld.generate(*mnist_train, count=10, seed=1, pool=shipped_pool), small_model)
    assert report["overall"]["accuracy"] > report["overall"]["naive_accuracy"] + 0.25


def test_composed_numbers_carry_one_box_per_digit(mnist_train, shipped_pool):
    numbers = realworld.generate_numbers(*mnist_train, count=5, length=4, seed=2, pool=shipped_pool)
    assert numbers == realworld.generate_numbers(*mnist_train, count=5, length=4, seed=2, pool=shipped_pool)
    for sample in numbers:
        width, height = Image.open(io.BytesIO(sample.payload)).size
        assert len(sample.number) == 4 and len(sample.boxes) == 4
        lefts = [box[0] for box in sample.boxes]
        assert lefts == sorted(lefts)
        for left, top, box_width, box_height in sample.boxes:
            assert left >= 0 and top >= 0
            assert left + box_width <= width + 2 and top + box_height <= height + 2


def test_number_evaluation_reports_exact_reads(mnist_train, small_model, shipped_pool):
    numbers = realworld.generate_numbers(*mnist_train, count=4, seed=3, pool=shipped_pool)
    report = realworld.evaluate_numbers(numbers, {"cnn": small_model})
    assert report["numbers"] == 4
    assert 0 <= report["exact"] <= report["right_digit_count"] <= 1
    assert report["alone_exact"] == realworld.read_alone_exactly(numbers, small_model)
    assert len(report["mistakes"]) == round(4 * (1 - report["exact"]))
    assert "read exactly right" in realworld.number_table(report, "cnn")
    alone = "numbers: every digit read right from its own MNIST image, unsegmented"
    assert f"| {alone} | {report['alone_exact']:.1%} |" in realworld.number_table(report, "cnn")


class ReadsFromALookup:
    """A stand-in model that reads each image as the digit a lookup gives it, and an unknown one as 0."""

    def __init__(self, digits):
        self.digits = digits

    def predict_proba(self, images):
        return np.eye(10)[[self.digits.get(image.tobytes(), 0) for image in images]]


def test_reading_digits_alone_counts_the_numbers_whose_every_digit_is_read_right(mnist_train, shipped_pool):
    images, labels = mnist_train
    numbers = realworld.generate_numbers(images, labels, count=6, seed=4, pool=shipped_pool)
    truth = {images[index].tobytes(): int(labels[index]) for index in shipped_pool}
    assert all(
        [truth[image.tobytes()] for image in sample.digit_images] == [int(digit) for digit in sample.number]
        for sample in numbers
    )
    assert realworld.read_alone_exactly(numbers, ReadsFromALookup(truth)) == 1.0
    # Misreading one digit of the second number costs that number only.
    misread = numbers[1].digit_images[2].tobytes()
    truth[misread] = (truth[misread] + 1) % 10
    assert realworld.read_alone_exactly(numbers, ReadsFromALookup(truth)) == 5 / 6


class RefusesEverything:
    """A stand-in not-a-digit screen that refuses every piece."""

    def verdicts(self, images):
        return [Verdict(is_digit=False, score=0.0, threshold=1.0) for _ in images]


def test_number_evaluation_with_the_screen_leaves_refused_digits_out_as_predict_multi_does(
    mnist_train, small_model, shipped_pool
):
    numbers = realworld.generate_numbers(*mnist_train, count=3, seed=3, pool=shipped_pool)
    unscreened = realworld.evaluate_numbers(numbers, {"cnn": small_model})
    screened = realworld.evaluate_numbers(numbers, {"cnn": small_model}, RefusesEverything())

    assert not unscreened["screened"] and unscreened["refused_digits"] == 0
    assert "refused as not a digit" not in realworld.number_table(unscreened, "cnn")
    assert screened["screened"] and screened["exact"] == 0 and screened["right_digit_count"] == 0
    # Every piece found was refused; a number split into more or fewer pieces than 4 digits changes the share.
    assert screened["refused_digits"] > 0
    assert all(mistake["read"] == "" for mistake in screened["mistakes"])
    refused = "| numbers: digits refused as not a digit (left out of the number) |"
    assert refused in realworld.number_table(screened, "cnn")


def test_saved_samples_are_image_files_named_by_source_and_digit(samples, tmp_path):
    paths = realworld.save_samples(samples[:8], tmp_path)
    assert len(paths) == 8
    for path, sample in zip(paths, samples[:8], strict=True):
        assert path.parent.name == sample.source and f"digit{sample.label}" in path.name
        assert path.read_bytes() == sample.payload


def test_thin_and_thick_pens_are_as_named(samples):
    for source, low, high in (("thin-pen", 0.001, 0.015), ("thick-pen", 0.15, 0.4)):
        shares = [
            float(condition.split(", ")[1].split("%")[0]) / 100
            for sample in samples
            if sample.source == source
            for condition in sample.conditions
            if condition.startswith("pen ")
        ]
        assert shares and all(low <= share <= high for share in shares), (source, shares)


@pytest.fixture(scope="module")
def drawn():
    return realworld.generate_drawn(4, seed=0)


def test_drawn_samples_are_font_digits_and_three_kinds_of_non_digit(drawn):
    by_source = {}
    for sample in drawn:
        by_source.setdefault(sample.source, []).append(sample)
    assert {source: len(found) for source, found in by_source.items()} == {
        realworld.STYLE_SOURCE: 4,
        **{source: 4 for source in realworld.NON_DIGIT_SOURCES},
    }
    assert all(sample.label in range(10) for sample in by_source[realworld.STYLE_SOURCE])
    assert all(
        sample.label == realworld.NOT_A_DIGIT for source in realworld.NON_DIGIT_SOURCES for sample in by_source[source]
    )
    assert [sample.payload for sample in drawn] == [sample.payload for sample in realworld.generate_drawn(4, seed=0)]


def test_evaluation_counts_refusals_of_digits_and_of_non_digits(samples, drawn):
    everything = samples + drawn
    inputs, refused_by_preprocessing, _ = realworld.model_inputs(everything)
    brightness = inputs.astype(float).mean(axis=(1, 2))
    threshold = float(np.median(brightness))
    report = realworld.evaluate(everything, ReadsEverythingAs(1), ScoresBy(threshold))
    refused = (brightness < threshold) | refused_by_preprocessing
    sources = np.array([sample.source for sample in everything])
    for source, row in report["sources"].items():
        assert row["not_a_digit"] == pytest.approx(refused[sources == source].mean())
    for source, row in report["non_digits"].items():
        chosen = sources == source
        assert row["refused"] == pytest.approx(refused[chosen].mean())
        # The stand-in model is certain of every answer, so whatever is not refused is a confident digit.
        assert row["confident_digit"] == pytest.approx(1 - refused[chosen].mean())
        assert row["confident_digit_without_detector"] == pytest.approx(1 - refused_by_preprocessing[chosen].mean())
    assert report["overall"]["samples"] == len(samples) + 4
    assert 0 <= report["detector_auroc"] <= 1
    assert "| not digits |" in realworld.report_table(report, "stub")


def test_uci_samples_are_real_digits_saved_with_square_pixels_at_8_16_or_32():
    samples = realworld.generate_uci(12, seed=3)
    assert samples == realworld.generate_uci(12, seed=3)
    assert samples != realworld.generate_uci(12, seed=4)
    images, labels = uci_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 255
    for sample in samples:
        assert sample.source == realworld.UCI_SOURCE and sample.label in range(10)
        pixels = np.asarray(Image.open(io.BytesIO(sample.payload)))
        side = pixels.shape[0]
        assert pixels.shape == (side, side) and side in (8, 16, 32)
        cells = pixels[:: side // 8, :: side // 8]
        # Every pixel of a cell is the cell's level, and the cells are one of the UCI digits in either polarity.
        np.testing.assert_array_equal(np.kron(cells, np.ones((side // 8, side // 8), dtype=np.uint8)), pixels)
        same = (images == cells).all(axis=(1, 2)) | (images == 255 - cells).all(axis=(1, 2))
        assert sample.label in labels[same]


def test_invalid_counts_are_refused(mnist_train, shipped_pool):
    with pytest.raises(ValueError):
        realworld.generate(*mnist_train, count=0, pool=shipped_pool)
    with pytest.raises(ValueError):
        realworld.generate_numbers(*mnist_train, count=1, length=0, pool=shipped_pool)
    with pytest.raises(ValueError, match="non-empty"):
        realworld.generate(*mnist_train, count=1, pool=np.array([], dtype=int))
    with pytest.raises(ValueError):
        realworld.generate_uci(0, seed=0)


def made_up_report(seed: int, accuracy: float, with_numbers: bool = True) -> dict:
    """A report shaped as run_realworld returns it, with figures that differ between sources, kinds and models
    (all follow ``accuracy``), so that a cell read from the wrong place shows."""
    sources = {
        source: {"samples": 250, "accuracy": accuracy - position / 1000, "naive_accuracy": 0.2, "not_a_digit": 0.004}
        for position, source in enumerate((*realworld.SOURCES, realworld.UCI_SOURCE, realworld.STYLE_SOURCE))
    }
    non_digits = {
        kind: {
            "samples": 250,
            "refused": accuracy - 0.06 - position / 100,
            "refused_by_preprocessing": 0.1,
            "confident_digit": 1.026 - accuracy + position / 100,
            "confident_digit_without_detector": accuracy - 0.3 + position / 100,
        }
        for position, kind in enumerate(realworld.NON_DIGIT_SOURCES)
    }
    report = {
        "model": "made-up",
        "seed": seed,
        "held_out_images": 5000,
        "digits": {
            "sources": sources,
            "overall": {
                "samples": 2000,
                "accuracy": accuracy,
                "naive_accuracy": accuracy - 0.7,
                "not_a_digit": 0.978 - accuracy,
            },
            "hardest_source": realworld.SOURCES[-1],
            "non_digits": non_digits,
            "detector_auroc": accuracy + 0.02,
            "confidence_auroc": 0.8,
            "refused": [{"position": 3, "source": realworld.SOURCES[0], "error": "No digit found"}],
            "mistakes": [{"position": 4, "source": realworld.SOURCES[0], "conditions": [], "label": 1, "read": 7}],
        },
    }
    if with_numbers:
        report["numbers"] = {
            "numbers": 200,
            "exact": accuracy - 0.05,
            "small_exact": accuracy - 0.07,
            "drawn_exact": accuracy - 0.04,
            "alone_exact": accuracy - 0.003,
            "right_digit_count": accuracy - 0.006,
            "digit_accuracy": accuracy - 0.01,
            "screened": True,
            "refused_digits": 0.98 - accuracy,
            "mistakes": [{"position": 1, "number": "1234", "read": "124"}],
        }
    return report


def test_the_record_keeps_every_models_figures_and_the_table_shows_them_by_column(tmp_path):
    reports = {"cnn": made_up_report(0, 0.976), "svm": made_up_report(0, 0.951)}
    written = realworld.write_realworld_record(
        reports, seed=0, count=250, numbers=200, seconds=321.4, models_dir=tmp_path
    )

    assert written == tmp_path / realworld.REALWORLD_NAME
    record = realworld.read_realworld_record(tmp_path)
    assert record["seed"] == 0 and record["count"] == 250 and record["numbers"] == 200 and record["seconds"] == 321.4
    assert list(record["models"]) == ["cnn", "svm"]
    # The lists of single mistakes stay out of the record; the figures are kept as they were.
    assert "mistakes" not in record["models"]["cnn"]["digits"] and "refused" not in record["models"]["cnn"]["digits"]
    assert "mistakes" not in record["models"]["cnn"]["numbers"]
    assert record["models"]["svm"]["digits"]["overall"]["accuracy"] == 0.951

    table = realworld.realworld_table(record, {"cnn": "Convolutional network"}, {})
    lines = table.splitlines()
    assert (
        lines[0]
        == "Seed 0: 250 samples per source, 200 numbers; measured on "
        + record["measured_at"][:10]
        + " in 321 s. "
        + realworld.INTERVAL_NOTE
    )
    assert lines[2] == "|  | Convolutional network (`cnn`) | svm (`svm`) |"
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in lines[4:]}
    expected = {
        realworld.SOURCES[1]: ["97.5%", "95.0% |"],
        "**all digits**": ["**97.6%** (96.8-98.2%)", "**95.1%** (94.1-96.0%) |"],
        "all digits, plain 28x28 resize": ["27.6%", "25.1% |"],
        "digits refused as not a digit": ["0.2%", "2.7% |"],
        "letters: refused as not a digit": ["91.6%", "89.1% |"],
        "symbols: refused as not a digit": ["90.6%", "88.1% |"],
        "doodles: read as a confident digit (without the check)": ["7.0% (69.6%)", "9.5% (67.1%) |"],
        "AUROC, digits against non-digits: detector score": ["0.9960", "0.9710 |"],
        "4-digit numbers read exactly right": ["92.6% (88.0-95.4%)", "90.1% (85.1-93.4%) |"],
        "numbers scanned small (digits 12-20 pixels tall): read exactly right": [
            "90.6% (85.6-93.8%)",
            "88.1% (82.8-91.8%) |",
        ],
        "numbers drawn on a canvas with one round pen: read exactly right": [
            "93.6% (89.2-96.2%)",
            "91.1% (86.2-94.2%) |",
        ],
        "numbers: every digit read right from its own MNIST image, unsegmented": ["97.3%", "94.8% |"],
        "numbers: right count of digits found": ["97.0%", "94.5% |"],
        "numbers: digits read right (a wrongly split number's digits count as wrong)": ["96.6%", "94.1% |"],
        "numbers: digits refused as not a digit (left out of the number)": ["0.4%", "2.9% |"],
    }
    assert {label: rows[label] for label in expected} == expected
    assert len(rows) == 8 + 3 + 2 * 3 + 1 + 7


def test_numbers_scanned_small_have_digits_12_to_20_pixels_tall_and_keep_what_they_show(mnist_train, shipped_pool):
    numbers = realworld.generate_numbers(*mnist_train, count=6, seed=3, pool=shipped_pool)
    small = realworld.scanned_small(numbers, seed=3)

    assert [sample.number for sample in small] == [sample.number for sample in numbers]
    for original, shrunk in zip(numbers, small, strict=True):
        width, height = Image.open(io.BytesIO(shrunk.payload)).size
        assert height < Image.open(io.BytesIO(original.payload)).size[1]
        digit_height = np.median([box[3] for box in shrunk.boxes])
        assert 11 <= digit_height <= 21, f"digits {digit_height} pixels tall"
        assert all(x + w <= width + 1 for x, _, w, _ in shrunk.boxes)
    assert realworld.scanned_small(numbers, seed=3)[0].payload == small[0].payload


def test_numbers_drawn_on_a_canvas_keep_their_digits_in_their_boxes_with_one_pen(mnist_train, shipped_pool):
    numbers = realworld.generate_numbers(*mnist_train, count=6, seed=3, pool=shipped_pool)
    drawn = realworld.drawn_numbers(numbers, seed=3)

    assert [sample.number for sample in drawn] == [sample.number for sample in numbers]
    low, high = realworld.DRAWN_DIGIT_HEIGHTS
    for sample in drawn:
        gray = to_grayscale(load_image(sample.payload))
        background = np.median(gray)
        lefts = [x for x, _, _, _ in sample.boxes]
        assert lefts == sorted(lefts), "the digits are laid out left to right"
        assert 0.85 * low - 1 <= np.median([box[3] for box in sample.boxes]) <= 1.15 * high + 1
        for x, y, width, height in sample.boxes:
            assert x + width <= gray.shape[1] and y + height <= gray.shape[0]
            assert np.abs(gray[y : y + height, x : x + width] - background).max() > 0.3, "every box holds a stroke"
        share = float(re.search(r"pen [\d.]+px, ([\d.]+)% of the height", " ".join(sample.conditions)).group(1))
        assert 100 * CANVAS_PEN_SHARE[0] - 0.1 <= share <= 100 * CANVAS_PEN_SHARE[1] + 0.1
    assert realworld.drawn_numbers(numbers, seed=3)[0].payload == drawn[0].payload
    assert realworld.drawn_numbers(numbers, seed=4)[0].payload != drawn[0].payload


def test_a_number_table_without_the_small_scans_leaves_their_row_out():
    report = made_up_report(0, 0.976)["numbers"]
    del report["small_exact"]
    assert "scanned small" not in realworld.number_table(report, "cnn")


def test_the_commands_number_table_names_its_figures_as_the_readme_table_does():
    report = made_up_report(0, 0.976)
    record = {"seed": 0, "count": 250, "numbers": 200, "measured_at": "2026-12-04", "seconds": 1.0}
    table = realworld.realworld_table({**record, "models": {"cnn": report}}, {}, {})
    readme_labels = {line.split(" | ")[0][2:] for line in table.splitlines()[4:]}
    number_rows = realworld.number_table(report["numbers"], "cnn").splitlines()[3:]
    command_labels = {line.split(" | ")[0][2:] for line in number_rows}

    assert len(command_labels) == 7 and command_labels <= readme_labels
    assert "| 4-digit numbers read exactly right | 92.6% |" in number_rows


def test_a_headline_figures_interval_is_wilsons_for_its_sample_size():
    # By hand: 186 of 200 gives a centre of 0.9219 and a half-width of 0.0360 at z = 1.96.
    assert realworld.interval_cell(0.93, 200) == " (88.6-95.8%)"
    # Ten times the sample, a third of the width; a perfect score still leaves room below it.
    assert realworld.interval_cell(0.93, 2000) == " (91.8-94.0%)"
    assert realworld.interval_cell(1.0, 200) == " (98.1-100.0%)"


def test_a_record_without_numbers_has_no_number_rows_and_a_folder_without_one_has_no_record(tmp_path):
    assert realworld.read_realworld_record(tmp_path) is None
    report = made_up_report(5, 0.95, with_numbers=False)
    realworld.write_realworld_record({"mlp": report}, seed=5, count=250, numbers=0, seconds=1, models_dir=tmp_path)
    table = realworld.realworld_table(realworld.read_realworld_record(tmp_path), {}, {})
    assert table.startswith("Seed 5: 250 samples per source; measured on ")
    assert "numbers" not in table


def test_the_table_names_the_models_whose_files_are_not_those_measured(tmp_path, mnist_train):
    write_manifest(Manifest(models={name: recorded_entry(mnist_train) for name in ("cnn", "svm")}), tmp_path)
    reports = {"cnn": made_up_report(0, 0.976), "svm": made_up_report(0, 0.951)}
    realworld.write_realworld_record(reports, seed=0, count=250, numbers=200, seconds=1, models_dir=tmp_path)
    record = realworld.read_realworld_record(tmp_path)
    measured = {name: entry.sha256 for name, entry in read_manifest(tmp_path).models.items()}
    assert record["model_sha256"] == measured

    assert realworld.changed_models_note(record, measured) == ""
    assert "These figures are not those" not in realworld.realworld_table(record, {}, measured)
    note = f" now in this folder: run `{realworld.RECORD_COMMAND}` again."
    # A model retrained since, one added since, and one gone since are each named.
    retrained = {**measured, "svm": "f" * 64}
    assert realworld.realworld_table(record, {}, retrained).endswith("These figures are not those of the svm" + note)
    added = {**measured, "ensemble": "e" * 64}
    assert realworld.changed_models_note(record, added).endswith("of the ensemble" + note)
    assert realworld.changed_models_note(record, {"cnn": measured["cnn"]}).endswith("of the svm" + note)
