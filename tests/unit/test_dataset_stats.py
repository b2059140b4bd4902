import numpy as np
import pytest

from digitlab.data.stats import (
    class_counts,
    class_distribution_rows,
    ink_statistics,
    intensity_histogram,
    mean_images,
    samples_per_digit,
)


def test_class_counts_include_absent_digits():
    assert class_counts(np.array([0, 0, 3, 9], dtype=np.uint8)).tolist() == [2, 0, 0, 1, 0, 0, 0, 0, 0, 1]


def test_class_counts_refuse_labels_outside_zero_to_nine():
    with pytest.raises(ValueError):
        class_counts(np.array([1, 10]))


def test_class_distribution_rows_give_counts_and_shares_per_split():
    rows = class_distribution_rows({"train": np.array([1, 1, 2, 2]), "test": np.array([5])})

    assert len(rows) == 20
    assert {"split": "train", "digit": 1, "count": 2, "share": 0.5} in rows
    assert {"split": "test", "digit": 5, "count": 1, "share": 1.0} in rows


def test_mean_images_average_each_digit_separately():
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[0, 0, 0] = 200
    images[1, 0, 0] = 100
    images[2, 5, 5] = 255
    means = mean_images(images, np.array([4, 4, 7]))

    assert means.shape == (10, 28, 28)
    assert means[4, 0, 0] == pytest.approx(150)
    assert means[7, 5, 5] == pytest.approx(255)
    assert means[0].sum() == 0


def test_mean_images_refuse_mismatched_inputs():
    with pytest.raises(ValueError):
        mean_images(np.zeros((2, 28, 28), dtype=np.uint8), np.array([1]))


def test_intensity_histogram_counts_every_pixel_or_only_ink():
    images = np.zeros((1, 28, 28), dtype=np.uint8)
    images[0, 0, :4] = [255, 128, 7, 8]

    counts, edges = intensity_histogram(images, bins=32)
    assert counts.sum() == 784
    assert counts[0] == 780 + 1  # the zeros and the 7 share the first range, 0-7
    assert counts[1] == 1 and counts[16] == 1 and counts[31] == 1
    assert edges[0] == 0 and edges[-1] == 256 and len(edges) == 33

    ink_counts, _ = intensity_histogram(images, bins=32, include_background=False)
    assert ink_counts.sum() == 4


def test_intensity_histogram_needs_bins_that_divide_256_and_uint8_pixels():
    with pytest.raises(ValueError):
        intensity_histogram(np.zeros((1, 28, 28), dtype=np.uint8), bins=30)
    with pytest.raises(ValueError):
        intensity_histogram(np.zeros((1, 28, 28), dtype=np.float32))


def test_samples_per_digit_pick_only_that_digit_and_repeat_with_the_seed():
    labels = np.repeat(np.arange(10), 5)
    labels[-1] = 0  # digit 9 now has four images

    chosen = samples_per_digit(labels, per_digit=5, seed=1)

    assert [len(indices) for indices in chosen] == [5, 5, 5, 5, 5, 5, 5, 5, 5, 4]
    assert all((labels[indices] == digit).all() for digit, indices in enumerate(chosen))
    again = samples_per_digit(labels, per_digit=5, seed=1)
    assert all(np.array_equal(first, second) for first, second in zip(chosen, again, strict=True))


def test_ink_statistics_describe_brightness_and_coverage():
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[0, :14] = 255

    stats = ink_statistics(images)

    assert stats["ink_share"] == pytest.approx(0.25)
    assert stats["mean_intensity"] == pytest.approx(255 / 4)
