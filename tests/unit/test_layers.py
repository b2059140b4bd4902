"""Inside the models: the layer views' arrays for one image, checked against what each model computes."""

import numpy as np
import pytest

from digitlab.insight import layers
from digitlab.models.base import DigitClassifier
from digitlab.persistence import load_model


@pytest.fixture(scope="module")
def models(tiny_models_dir):
    return {name: load_model(name, tiny_models_dir) for name in ("svm", "mlp", "cnn")}


@pytest.fixture(scope="module")
def image(mnist_test):
    images, labels = mnist_test
    return images[int(np.flatnonzero(labels == 7)[0])]


def test_the_cnn_view_holds_each_blocks_strongest_channels_first_and_the_models_own_output(models, image):
    view = layers.layer_views(models, image).cnn

    assert [(block.number, block.layer) for block in view.blocks] == [(1, "block1_relu2"), (2, "block2_relu2")]
    first, second = view.blocks
    assert first.maps.shape == (layers.SHOWN_CHANNELS, 24, 24) and second.maps.shape == (layers.SHOWN_CHANNELS, 8, 8)
    assert (first.total_channels, second.total_channels) == (32, 64)
    for block in view.blocks:
        assert np.all(np.diff(block.strength) <= 0), "strongest channels first"
        np.testing.assert_allclose(block.maps.mean(axis=(1, 2)), block.strength, rtol=1e-5)
        assert len(set(block.channels.tolist())) == len(block.channels)
        assert block.maps.min() >= 0, "the maps are taken after a ReLU"
    assert view.dense.shape == (128,) and view.dense.min() >= 0
    np.testing.assert_allclose(view.probabilities, models["cnn"].predict_proba(image[None])[0], atol=1e-5)


def test_strongest_channels_are_ordered_by_mean_activation():
    activations = np.zeros((4, 4, 3), dtype=np.float32)
    activations[..., 0], activations[..., 2] = 1.0, 3.0
    maps = layers.strongest_channels("block", activations, count=2)

    assert maps.channels.tolist() == [2, 0] and maps.strength.tolist() == [3.0, 1.0]
    assert maps.maps.shape == (2, 4, 4) and maps.maps[0].max() == 3.0


def test_the_mlp_units_push_towards_the_models_answer_and_show_their_effective_weights(models, image):
    view = layers.layer_views(models, image).mlp

    assert view.chosen == int(models["mlp"].predict(image[None])[0])
    assert view.activations.shape == (models["mlp"].network_.get_layer("hidden1").units,)
    contributions = [unit.contribution for unit in view.units]
    assert len(view.units) == layers.SHOWN_UNITS and contributions == sorted(contributions, reverse=True)
    assert all(unit.activation == pytest.approx(float(view.activations[unit.index])) for unit in view.units)
    kernel = np.asarray(models["mlp"].network_.get_layer("hidden1").kernel)
    unit = view.units[0]
    # The picture is the unit's raw weights times one factor (its batch normalisation's scale).
    factor = unit.weights.ravel() @ kernel[:, unit.index] / (kernel[:, unit.index] @ kernel[:, unit.index])
    np.testing.assert_allclose(unit.weights.ravel(), factor * kernel[:, unit.index], rtol=1e-4, atol=1e-7)


def test_the_svm_duel_is_the_sum_of_its_support_vectors_weights_and_bias(models, image):
    view = layers.layer_views(models, image).svm
    model = models["svm"]
    svc = model.pipeline.named_steps["svc"]

    assert view.chosen == int(model.predict(image[None])[0]) and view.rival != view.chosen
    features = model.pipeline[:-1].transform(image.reshape(1, -1).astype(np.float64))[0]
    indices, coefficients = layers.duel_coefficients(svc, view.chosen, view.rival)
    kernel = np.exp(-svc._gamma * ((svc.support_vectors_[indices] - features) ** 2).sum(axis=1))
    first, second = sorted((view.chosen, view.rival))
    position = sum(9 - earlier for earlier in range(first)) + second - first - 1
    bias = svc.intercept_[position] * (1 if view.chosen == first else -1)
    # Every support vector's kernel value times dual coefficient, plus the bias, is the duel's decision value.
    assert float((coefficients * kernel).sum() + bias) == pytest.approx(view.decision, abs=1e-9)
    assert np.all(np.diff(np.abs(view.weights)) <= 0), "largest weights first"
    assert set(view.labels.tolist()) <= {view.chosen, view.rival}
    assert view.images.shape == (len(view.weights), 28, 28) and 0 <= view.images.min() <= view.images.max() <= 1


def test_the_closest_rival_is_the_duel_the_chosen_digit_wins_by_the_least():
    # Three classes: duels (0, 1), (0, 2), (1, 2); class 0 beats 1 by 2.0 and 2 by 0.5.
    assert layers.closest_rival(np.array([2.0, 0.5, -1.0]), 0, 3) == (2, 0.5)
    # Class 2 is the second of its pairs, so its margins are the negated values.
    assert layers.closest_rival(np.array([0.1, -3.0, -0.2]), 2, 3) == (1, 0.2)


def test_a_channels_drivers_are_the_gradient_of_its_mean_activation(models, image):
    model = models["cnn"]
    view = layers.layer_views(models, image).cnn
    channel = int(view.blocks[0].channels[0])

    drivers = layers.channel_drivers(model, image, "block1_relu2", channel)

    assert drivers.shape == (28, 28) and np.abs(drivers).max() > 0
    # A small step along the gradient raises the channel's mean activation, as a gradient must.
    stepped = np.clip(image.astype(np.float32) + 0.5 * np.sign(drivers) * (image < 255), 0, 255)
    before = layers.layer_outputs(model.network_, image, ("block1_relu2",))["block1_relu2"][..., channel].mean()
    after = layers.layer_outputs(model.network_, stepped, ("block1_relu2",))["block1_relu2"][..., channel].mean()
    assert after > before
    with pytest.raises(ValueError, match="no channel 99"):
        layers.channel_drivers(model, image, "block1_relu2", 99)
    with pytest.raises(ValueError, match="no layer 'nowhere'"):
        layers.channel_drivers(model, image, "nowhere", 0)


def test_only_the_views_of_the_given_models_are_made(models, image):
    views = layers.layer_views({"svm": models["svm"]}, image[None])

    assert views.cnn is None and views.mlp is None and views.svm is not None and views.unavailable == {}
    with pytest.raises(ValueError, match="one 28x28 image"):
        layers.layer_views(models, np.zeros((2, 28, 28)))


def test_a_model_without_a_view_is_named_with_the_reason(models, tiny_models_dir, image):
    # A family the views do not know: only its name and title matter here, so its methods are never called.
    forest = type("Forest", (), {"name": "forest", "title": "Random forest", "members": DigitClassifier.members})()
    everything = {**models, "ensemble": load_model("ensemble", tiny_models_dir), "forest": forest}
    views = layers.layer_views(everything, image)

    assert views.cnn is not None and views.mlp is not None and views.svm is not None
    assert views.unavailable == {
        "ensemble": "Ensemble (weighted soft vote) has no layers of its own: it combines the answers of the SVM, "
        "MLP and CNN; look inside them.",
        "forest": "digitlab has no view of the inside of the Random forest family yet.",
    }


def test_a_quick_recipe_cnn_has_its_three_blocks_found_by_structure_and_no_dense_layer(image):
    from digitlab.models.networks import build_quick_cnn, build_reference_cnn
    from digitlab.models.neural import CNNClassifier

    quick = CNNClassifier(recipe="quick")
    quick._set_network(build_quick_cnn())
    view = layers.layer_views({"cnn": quick}, image).cnn

    assert [(block.number, block.layer) for block in view.blocks] == [
        (1, "block1_conv"),
        (2, "block2_relu"),
        (3, "block3_relu"),
    ]
    assert [block.maps.shape for block in view.blocks] == [(16, 28, 28), (16, 14, 14), (16, 7, 7)]
    assert view.dense is None
    np.testing.assert_allclose(view.probabilities, quick.predict_proba(image[None])[0], atol=1e-5)
    assert layers.channel_drivers(quick, image, "block3_relu", int(view.blocks[2].channels[0])).shape == (28, 28)
    # A network with no pooling has no blocks to show: it is named with the reason instead of failing.
    flat = CNNClassifier()
    flat._set_network(keras_without_pooling())
    views = layers.layer_views({"cnn": flat}, image)
    assert views.cnn is None and "no convolution block that ends in pooling" in views.unavailable["cnn"]
    assert layers.hidden_dense_output(build_reference_cnn()) is None


def keras_without_pooling():
    import keras

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
