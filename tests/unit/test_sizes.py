import numpy as np
import pytest
from scipy import ndimage

from digitlab.imaging.segment import Segment, read_segments
from digitlab.imaging.sizes import FIELD_CENTRE, reading_probabilities, scaled_digits
from digitlab.recognise import predict_digit
from digitlab.training import build_model
from tests.support import model_input


class WidthReader:
    """A stand-in model whose answer depends on how wide the ink is, so reading at another size changes it.

    It records every batch it is given.
    """

    def __init__(self, reading_sizes: tuple[float, ...] | None = None):
        if reading_sizes is not None:
            self.reading_sizes = reading_sizes
        self.batches: list[np.ndarray] = []

    def predict_proba(self, images):
        images = np.asarray(images)
        self.batches.append(images)
        widths = np.array([np.flatnonzero(image.max(axis=0) > 30).size for image in images], dtype=int)
        probabilities = np.full((len(images), 10), 0.01)
        probabilities[np.arange(len(images)), np.minimum(widths // 3, 9)] = 0.91
        return probabilities


def centred_square(side: int) -> np.ndarray:
    image = np.zeros((28, 28), dtype=np.uint8)
    start = 14 - side // 2
    image[start : start + side, start : start + side] = 255
    return image


def test_size_one_leaves_the_input_as_it_is():
    image = model_input(3)
    assert np.array_equal(scaled_digits(image, 1.0)[0], image)


def test_a_smaller_size_shrinks_the_ink_about_the_field_centre():
    image = centred_square(20)
    shrunk = scaled_digits(image, 0.5)[0]
    columns = np.flatnonzero(shrunk.max(axis=0) > 127)
    assert 9 <= columns.size <= 11
    centre = ndimage.center_of_mass(shrunk.astype(float))
    assert np.allclose(centre, ndimage.center_of_mass(image.astype(float)), atol=0.5)
    assert abs(centre[0] - FIELD_CENTRE) <= 0.5
    assert shrunk.sum() == pytest.approx(image.sum() / 4, rel=0.15)


def test_a_size_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="must be positive"):
        scaled_digits(model_input(1), 0.0)


def test_one_size_is_the_model_s_own_answer():
    reader, images = WidthReader((1.0,)), np.stack([centred_square(20), centred_square(8)])
    assert np.array_equal(reading_probabilities(reader, images), reader.predict_proba(images))


def test_a_predictor_that_names_no_sizes_reads_each_input_once():
    reader = WidthReader()
    reading_probabilities(reader, np.stack([centred_square(20), centred_square(8)]))
    assert [len(batch) for batch in reader.batches] == [2]


def test_several_sizes_average_the_answers_in_one_batch():
    images = np.stack([centred_square(20), centred_square(8)])
    reader = WidthReader((1.0, 0.5))
    mixed = reading_probabilities(reader, images)
    assert [len(batch) for batch in reader.batches] == [4]
    as_they_are = WidthReader().predict_proba(images)
    halved = WidthReader().predict_proba(scaled_digits(images, 0.5))
    assert np.allclose(mixed, (as_they_are + halved) / 2)
    assert np.allclose(mixed.sum(axis=1), 1.0)
    # The wide square reads 6 as it is and 3 at half its size: the mean holds both at half weight.
    assert mixed[0, 6] == pytest.approx(0.46) and mixed[0, 3] == pytest.approx(0.46)


def test_an_empty_batch_gives_no_rows():
    assert reading_probabilities(WidthReader((1.0, 0.5)), np.zeros((0, 28, 28), dtype=np.uint8)).shape == (0, 10)


def test_a_drawing_is_read_at_the_model_s_sizes():
    image = centred_square(20)
    expected = reading_probabilities(WidthReader((1.0, 0.5)), image)[0]
    [reading] = predict_digit({"wide": WidthReader((1.0, 0.5))}, image)
    assert np.allclose(reading.probabilities, expected)
    assert reading.digit in (3, 6)


def test_a_number_s_pieces_are_read_once_at_the_size_segmentation_made_them():
    image = centred_square(20)
    reader = WidthReader((1.0, 0.5))
    [number] = read_segments([Segment(box=(0, 0, 20, 20), model_input=image)], {"wide": reader})
    assert [len(batch) for batch in reader.batches] == [1]
    assert number.number == "6"


def test_the_full_recipe_s_augmented_cnn_reads_at_two_sizes_and_the_other_models_once():
    assert build_model("cnn").reading_sizes == (1.0, 0.85)
    assert build_model("cnn", augment=False).reading_sizes == (1.0,)
    assert build_model("cnn", recipe="quick").reading_sizes == (1.0,)
    assert build_model("cnn", recipe="quick", augment=True).reading_sizes == (1.0,)
    assert all(build_model(name).reading_sizes == (1.0,) for name in ("svm", "mlp", "ensemble"))
