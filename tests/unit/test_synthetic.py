import numpy as np
import pytest

from digitlab.data import synthetic


def test_training_and_validation_fonts_do_not_overlap():
    assert not set(synthetic.TRAINING_FONTS) & set(synthetic.VALIDATION_FONTS)


@pytest.mark.parametrize("look_alike", list("OoIlSsZzBbGgqT0123456789"))
def test_no_letter_a_digit_may_be_written_as_counts_as_a_non_digit(look_alike):
    assert look_alike not in synthetic.LETTER_CHARACTERS


def test_a_glyph_is_strokes_in_a_unit_box_with_y_downwards():
    strokes = synthetic.glyph("futural", "7")
    points = np.concatenate(strokes)
    assert points.min() >= -1e-9 and points.max() <= 1 + 1e-9
    # The bar of a 7 is at its top, which with y growing downwards is the smallest y.
    bar = max(strokes, key=lambda stroke: np.ptp(stroke[:, 0]) - np.ptp(stroke[:, 1]))
    assert bar[:, 1].mean() < 0.2


def test_dots_and_commas_are_not_glyphs():
    assert synthetic.glyph("futural", ".") == ()
    assert synthetic.glyph("futural", ",") == ()


def test_non_digit_drawings_are_reproducible_canvases_of_each_kind():
    first = list(synthetic.non_digit_drawings(synthetic.VALIDATION_FONTS, 9, seed=3))
    second = list(synthetic.non_digit_drawings(synthetic.VALIDATION_FONTS, 9, seed=3))
    assert [drawing.kind for drawing in first] == ["letter", "symbol", "doodle"] * 3
    for a, b in zip(first, second, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(a.image, b.image)
        assert a.image.dtype == np.float32 and a.image.min() >= 0 and a.image.max() <= 1
        # White ink on black: the border is background and there is ink.
        assert a.image[0].max() < 0.5 and a.image.max() > 0.9


def test_digit_drawings_carry_their_labels_and_some_sevens_have_a_bar():
    drawings = list(synthetic.digit_drawings(synthetic.TRAINING_FONTS, 40, seed=0))
    assert {label for label, _ in drawings} <= set(range(10))
    seven = list(synthetic.glyph("futural", "7"))
    assert len(synthetic.with_bar(seven)) == len(seven) + 1


def test_every_doodle_maker_draws_strokes():
    rng = np.random.default_rng(0)
    for name, make in synthetic.DOODLES.items():
        strokes = make(rng)
        assert strokes and all(stroke.ndim == 2 and stroke.shape[1] == 2 for stroke in strokes), name
        image = synthetic.drawn(strokes, rng)
        assert image.max() > 0.9, name
