import numpy as np
import pytest

from digitlab.stroke_augment import (
    MIN_WIDTH_AFTER_THINNING,
    WIDTH_CHANGES,
    change_width,
    pen,
    stroke_widths,
    vary_stroke_width,
)


def bars(widths: list[int]) -> np.ndarray:
    """A stack of vertical bars, 20 pixels tall, of the given widths."""
    stack = np.zeros((len(widths), 28, 28), dtype=np.uint8)
    for image, width in zip(stack, widths, strict=True):
        image[4:24, 14 - width // 2 : 14 - width // 2 + width] = 255
    return stack


@pytest.mark.parametrize("change", [-1.0, 1.0, 1.5])
def test_change_width_widens_or_thins_a_bar_by_the_change(change):
    bar = bars([4])
    changed = change_width(bar, change)
    mass_per_row = changed[0, 10:18].astype(np.float64).sum(axis=1).mean() / 255
    assert mass_per_row == pytest.approx(4 + change, abs=0.35)


def test_pen_widens_by_its_size_less_one():
    assert pen(1).shape == (1, 2, 2) and pen(1).all()
    assert pen(3).shape == (1, 4, 4) and not pen(3)[0, 0, 0]


def test_stroke_widths_measure_bars():
    measured = stroke_widths(bars([2, 4, 6]))
    # The outline includes the bars' ends, so short thick bars measure a little thin.
    np.testing.assert_allclose(measured, [2, 4, 6], rtol=0.2)
    assert (np.diff(measured) > 0).all()


def test_vary_stroke_width_is_seeded_and_changes_about_the_share_asked(mnist_train):
    images = mnist_train[0][:2000]
    first = vary_stroke_width(images, np.random.default_rng(3), share=0.5)
    np.testing.assert_array_equal(first, vary_stroke_width(images, np.random.default_rng(3), share=0.5))
    changed = (first != images).any(axis=(1, 2)).mean()
    assert 0.4 < changed < 0.6
    assert first.dtype == np.uint8 and first.shape == images.shape
    np.testing.assert_array_equal(vary_stroke_width(images, np.random.default_rng(3), share=0.0), images)


def test_vary_stroke_width_spreads_the_widths_without_erasing_thin_digits(mnist_train):
    images = mnist_train[0][:2000]
    varied = vary_stroke_width(images, np.random.default_rng(4), share=1.0)
    before, after = stroke_widths(images), stroke_widths(varied)
    assert after.std() > 1.3 * before.std()
    assert (varied.max(axis=(1, 2)) > 200).all()
    # Digits too thin for even the gentlest thinning are only ever thickened.
    gentlest_thinning = max(change for change in WIDTH_CHANGES if change < 0)
    thin = before + gentlest_thinning < MIN_WIDTH_AFTER_THINNING
    assert (varied[thin].astype(np.int64).sum(axis=(1, 2)) >= images[thin].astype(np.int64).sum(axis=(1, 2))).all()


def test_wrong_input_is_refused():
    with pytest.raises(ValueError):
        vary_stroke_width(np.zeros((28, 28), dtype=np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError):
        vary_stroke_width(np.zeros((2, 28, 28), dtype=np.uint8), np.random.default_rng(0), share=2.0)
