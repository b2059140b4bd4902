import numpy as np
import pytest

from digitlab.insight.attribution import explain, heat_overlay, occlusion_map, saliency_map

# The region the hand-made models below look at: rows 4-11, columns 16-23 (the upper right).
REGION = (slice(4, 12), slice(16, 24))


def region_mask() -> np.ndarray:
    mask = np.zeros((28, 28), dtype=bool)
    mask[REGION] = True
    return mask


def region_only_probabilities(images: np.ndarray) -> np.ndarray:
    """A model that reads 1 in proportion to the ink in the region and 0 otherwise, blind to every other pixel."""
    ink = np.asarray(images, dtype=np.float64)[:, REGION[0], REGION[1]].sum(axis=(1, 2)) / (64 * 255)
    probabilities = np.zeros((len(images), 10))
    probabilities[:, 1] = ink
    probabilities[:, 0] = 1 - ink
    return probabilities


def region_only_network():
    """A Keras softmax layer over the flattened pixels whose weights are zero outside the region."""
    import keras

    network = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax", name="probabilities"),
        ]
    )
    weights = np.zeros((784, 10), dtype=np.float32)
    weights[region_mask().ravel(), 1] = 0.01
    weights[~region_mask().ravel(), 3] = 0.01
    network.layers[-1].set_weights([weights, np.zeros(10, dtype=np.float32)])
    return network


def full_page() -> np.ndarray:
    """Ink everywhere, so every square that occlusion blanks takes some away."""
    return np.full((28, 28), 200.0, dtype=np.float32)


def test_occlusion_heat_lies_only_where_the_model_looks():
    heat = occlusion_map(region_only_probabilities, full_page(), digit=1)

    assert heat.shape == (28, 28)
    assert (heat[region_mask()] > 0).all()
    # Squares overlapping the region's edge cover neighbouring pixels too, so allow one patch width around it.
    far = np.ones((28, 28), dtype=bool)
    far[0:16, 12:28] = False
    assert np.abs(heat[far]).max() == 0
    assert heat[REGION].mean() > 10 * np.abs(heat[~region_mask()]).mean()


def test_occlusion_of_the_other_digit_is_the_opposite_sign():
    assert (occlusion_map(region_only_probabilities, full_page(), digit=0)[region_mask()] < 0).all()


def test_saliency_is_zero_outside_the_region_the_network_weighs():
    network = region_only_network()

    heat = saliency_map(network, full_page(), digit=1)
    other = saliency_map(network, full_page(), digit=3)

    assert (heat[region_mask()] > 0).all() and (heat[~region_mask()] == 0).all()
    assert (other[region_mask()] == 0).all() and (other[~region_mask()] > 0).all()


def test_explain_gives_saliency_only_to_models_with_a_network():
    class PlainModel:
        predict_proba = staticmethod(region_only_probabilities)

    class KerasLike(PlainModel):
        network_ = region_only_network()

    assert set(explain(PlainModel(), full_page(), 1)) == {"occlusion"}
    assert set(explain(KerasLike(), full_page(), 1)) == {"occlusion", "saliency"}


def test_overlay_colours_the_hot_pixels_and_keeps_the_rest_grey():
    image = np.zeros((28, 28))
    image[10, 10] = 255
    heat = np.zeros((28, 28))
    heat[REGION] = 1.0
    heat[0, 0] = -5.0

    picture = heat_overlay(image, heat, scale=2)

    assert picture.shape == (56, 56, 3) and picture.dtype == np.uint8
    hot = picture[2 * 4, 2 * 16]
    assert hot[0] > 200 and hot[2] < 50
    grey = picture[20, 20]
    assert grey[0] == grey[1] == grey[2]
    assert (picture[0, 0] == 0).all(), "negative heat is not drawn"
    assert picture[20, 20, 0] > 100, "the ink shows through"


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="28x28"):
        occlusion_map(region_only_probabilities, np.zeros((20, 20)), 1)
    with pytest.raises(ValueError, match="between 0 and 9"):
        occlusion_map(region_only_probabilities, full_page(), 10)
    with pytest.raises(ValueError, match="patch"):
        occlusion_map(region_only_probabilities, full_page(), 1, patch=0)
    with pytest.raises(ValueError, match="heat map"):
        heat_overlay(full_page(), np.zeros(5))
