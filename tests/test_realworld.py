import io
import warnings

import numpy as np
import pytest
from PIL import Image, ImageOps

from digitlab import realworld
from digitlab.models import SVMClassifier
from digitlab.preprocess import preprocess


class ReadsEverythingAs:
    """A stand-in model that reads every input as the same digit."""

    def __init__(self, digit: int):
        self.digit = digit

    def predict(self, images):
        return np.full(len(images), self.digit)


@pytest.fixture(scope="module")
def samples(mnist_train):
    return realworld.generate(*mnist_train, count=6, seed=5)


@pytest.fixture(scope="module")
def small_model(small_train):
    """An SVM fitted in a second or two on 600 training digits."""
    with warnings.catch_warnings():
        # 60 calibration images leave some digit with fewer examples than calibration folds.
        warnings.filterwarnings("ignore", message="The least populated class")
        return SVMClassifier(validation_size=100).fit(*small_train)


def test_generation_is_seeded_and_covers_every_source(mnist_train, samples):
    again = realworld.generate(*mnist_train, count=6, seed=5)
    assert [sample.payload for sample in again] == [sample.payload for sample in samples]
    other = realworld.generate(*mnist_train, count=6, seed=6)
    assert [sample.payload for sample in other] != [sample.payload for sample in samples]
    assert sorted({sample.source for sample in samples}) == sorted(realworld.SOURCES)
    assert len(samples) == 6 * len(realworld.SOURCES)


def test_samples_come_from_digits_the_shipped_models_held_out(mnist_train, samples):
    held_out = set(realworld.held_out_indices(len(mnist_train[0])).tolist())
    assert len(held_out) == realworld.HELD_OUT_SIZE
    for sample in samples:
        assert sample.mnist_index in held_out
        assert sample.label == mnist_train[1][sample.mnist_index]


@pytest.mark.parametrize(
    ("source", "shortest", "longest"),
    [("envelope-scan", 12, 24), ("binarised-form", 16, 48), ("canvas-drawing", 90, 1024), ("phone-photo", 300, 1200)],
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


def test_preprocessing_reads_far_more_than_a_naive_resize(mnist_train, small_model):
    report = realworld.evaluate(realworld.generate(*mnist_train, count=10, seed=1), small_model)
    assert report["overall"]["accuracy"] > report["overall"]["naive_accuracy"] + 0.25


def test_composed_numbers_carry_one_box_per_digit(mnist_train):
    numbers = realworld.generate_numbers(*mnist_train, count=5, length=4, seed=2)
    assert numbers == realworld.generate_numbers(*mnist_train, count=5, length=4, seed=2)
    for sample in numbers:
        width, height = Image.open(io.BytesIO(sample.payload)).size
        assert len(sample.number) == 4 and len(sample.boxes) == 4
        lefts = [box[0] for box in sample.boxes]
        assert lefts == sorted(lefts)
        for left, top, box_width, box_height in sample.boxes:
            assert left >= 0 and top >= 0
            assert left + box_width <= width + 2 and top + box_height <= height + 2


def test_number_evaluation_reports_exact_reads(mnist_train, small_model):
    numbers = realworld.generate_numbers(*mnist_train, count=4, seed=3)
    report = realworld.evaluate_numbers(numbers, {"cnn": small_model})
    assert report["numbers"] == 4
    assert 0 <= report["exact"] <= report["right_digit_count"] <= 1
    assert len(report["mistakes"]) == round(4 * (1 - report["exact"]))
    assert "read exactly right" in realworld.number_table(report, "cnn")


def test_saved_samples_are_image_files_named_by_source_and_digit(samples, tmp_path):
    paths = realworld.save_samples(samples[:8], tmp_path)
    assert len(paths) == 8
    for path, sample in zip(paths, samples[:8], strict=True):
        assert path.parent.name == sample.source and f"digit{sample.label}" in path.name
        assert path.read_bytes() == sample.payload


def test_invalid_counts_are_refused(mnist_train):
    with pytest.raises(ValueError):
        realworld.generate(*mnist_train, count=0)
    with pytest.raises(ValueError):
        realworld.generate_numbers(*mnist_train, count=1, length=0)
