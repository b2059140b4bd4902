import numpy as np
import pytest

import digitlab.training
from digitlab.models.base import validation_split
from digitlab.styles import KIND_SHARES, elastic, kind_counts, style_examples
from digitlab.training import build_model, writing_style_examples


@pytest.fixture(scope="module")
def made(small_train):
    images, labels = small_train
    return style_examples(images, labels, count=60, seed=3)


@pytest.mark.parametrize("total", [0, 7, 60, 11_000])
def test_kind_counts_divide_exactly_the_total(total):
    counts = kind_counts(total)
    assert set(counts) == set(KIND_SHARES)
    assert sum(counts.values()) == total
    assert all(count >= 0 for count in counts.values())


def test_examples_are_model_inputs_of_every_kind_with_their_digits(made):
    assert made.images.shape[1:] == (28, 28) and made.images.dtype == np.uint8
    assert len(made.images) == len(made.labels) == len(made.kinds)
    # Preprocessing may refuse a rare faint rendering, never most of them.
    assert 54 <= len(made) <= 60
    assert set(made.counts()) == set(KIND_SHARES)
    assert set(np.unique(made.labels)) <= set(range(10))
    # Each is centred ink on black as preprocess delivers it, not a blank or a full square.
    ink = (made.images > 127).mean(axis=(1, 2))
    assert ink.min() > 0.02 and ink.max() < 0.6


def test_the_same_seed_makes_the_same_examples_and_another_seed_others(small_train, made):
    images, labels = small_train
    again = style_examples(images, labels, count=60, seed=3)
    other = style_examples(images, labels, count=60, seed=4)
    np.testing.assert_array_equal(made.images, again.images)
    np.testing.assert_array_equal(made.labels, again.labels)
    assert not np.array_equal(made.images[: len(other)], other.images[: len(made)])


def test_font_digits_carry_the_digit_they_show(made):
    # Rendered MNIST digits keep their labels by construction; font digits get theirs from the glyph drawn.
    fonts = made.labels[made.kinds == "font-digit"]
    assert len(fonts) and set(fonts) <= set(range(10))


def test_elastic_distortion_moves_the_ink_but_keeps_the_digit(small_train):
    image = small_train[0][0]
    rng = np.random.default_rng(0)
    bent = elastic(image, rng)
    assert bent.shape == image.shape and bent.min() >= 0.0 and bent.max() <= 1.0
    original = image / 255
    assert np.abs(bent - original).sum() > 5
    # Smooth displacement: the ink stays near where it was, so bent and original still overlap strongly.
    overlap = (bent * original).sum() / np.sqrt((bent**2).sum() * (original**2).sum())
    assert overlap > 0.5


def test_progress_reports_how_many_examples_are_made(small_train):
    reports = []
    style_examples(*small_train, count=12, seed=0, progress=lambda done, total: reports.append((done, total)))
    assert reports and reports[-1] == (12, 12)


def test_a_network_asks_for_its_style_share_of_its_training_part_and_the_shipped_recipes_for_none():
    cnn = build_model("cnn", style_share=0.2)
    training_part = validation_split(60_000, cnn.validation_size, cnn.seed)[0]
    assert cnn.extra_examples_wanted(60_000) == round(0.2 * len(training_part)) == 11_000
    np.testing.assert_array_equal(cnn.training_part(60_000), training_part)
    assert build_model("mlp", style_share=0.1).extra_examples_wanted(60_000) == 5_500
    for name in ("svm", "mlp", "cnn", "ensemble"):
        assert build_model(name).extra_examples_wanted(60_000) == 0


def test_examples_are_made_from_the_training_part_only_and_once_per_cache(small_train, monkeypatch):
    images, labels = small_train
    model = build_model("cnn", style_share=0.2)
    held_out = set(validation_split(len(images), model.validation_size, model.seed)[1])
    calls = []

    def recording(given_images, given_labels, *, count, seed, progress=None):
        calls.append(given_images)
        return style_examples(given_images[:20], given_labels[:20], count=count, seed=seed)

    monkeypatch.setattr(digitlab.training, "style_examples", recording)
    cache = {}
    first = writing_style_examples(model, images, labels, 10, 0, cache, None)
    second = writing_style_examples(model, images, labels, 10, 0, cache, None)

    assert first is second and len(calls) == 1
    given = {image.tobytes() for image in calls[0]}
    assert not given & {images[index].tobytes() for index in held_out}
    assert len(calls[0]) == len(images) - len(held_out)


def test_extra_examples_join_the_training_part_and_not_the_validation_part(small_train, small_test):
    images, labels = small_train
    extra = (small_test[0][:50], small_test[1][:50])
    model = build_model("cnn", epochs=1, batch_size=32)
    model.fit(images, labels, extra_examples=extra)
    training_steps = int(np.ceil((len(model.training_part(len(images))) + 50) / 32))
    assert model.extra_examples_ == 50
    assert "50 extra examples" in model.training_notes()["writing_styles"]
    assert model.network_.optimizer.iterations.numpy() == training_steps
