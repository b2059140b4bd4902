import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone

from digitlab.models.base import DigitClassifier, Predictor, Reading, as_image_batch, validation_split
from digitlab.models.exported import RUNTIMES
from digitlab.models.neural import KerasClassifier, network_input
from digitlab.models.registry import REGISTRY
from digitlab.models.svm import shifted_copies
from digitlab.training import build_model

TINY_EPOCHS = 3


def tiny_model(name: str, seed: int = 0):
    """A model sized for 600 images: small batches so the networks take enough steps."""
    overrides = {"batch_size": 32} if issubclass(REGISTRY[name], KerasClassifier) else {}
    return build_model(name, epochs=TINY_EPOCHS, seed=seed, **overrides)


@pytest.fixture(scope="module")
def fitted_models(small_train):
    """Every family fitted on 600 images; combining families after the members they combine."""
    images, labels = small_train
    fitted = {}
    for name in sorted(REGISTRY, key=lambda name: bool(REGISTRY[name].members)):
        members = {member: fitted[member] for member in REGISTRY[name].members}
        fitted[name] = tiny_model(name).fit(images, labels, **({"members": members} if members else {}))
    return fitted


@pytest.mark.parametrize("name", list(REGISTRY))
def test_families_follow_scikit_learns_estimator_contract(name):
    family = REGISTRY[name]
    model = family()
    params = model.get_params()

    assert params and all(not key.endswith("_") for key in params)
    assert clone(model).get_params() == params
    changed = {"seed": 7}
    assert model.set_params(**changed).get_params() == {**params, **changed}
    with pytest.raises(TypeError):
        family(*params.values())


def test_an_ensemble_without_members_says_how_to_fit_it(small_train):
    with pytest.raises(ValueError, match="members"):
        build_model("ensemble").fit(*small_train)


def test_exported_models_and_families_are_predictors():
    assert all(issubclass(family, Predictor) for family in REGISTRY.values())
    assert all(issubclass(runtime, Predictor) for runtime in RUNTIMES.values())


def test_registry_maps_names_to_classifier_classes():
    assert {"svm", "mlp", "cnn"} <= set(REGISTRY)
    for name, family in REGISTRY.items():
        assert issubclass(family, DigitClassifier)
        assert family.name == name and family.title and family.artifact_name


@pytest.mark.parametrize("name", list(REGISTRY))
def test_fit_returns_self_and_probabilities_are_well_formed(fitted_models, small_test, name):
    model = fitted_models[name]
    images, labels = small_test
    probabilities = model.predict_proba(images)
    assert probabilities.shape == (len(images), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities >= 0).all()
    np.testing.assert_array_equal(model.predict(images), probabilities.argmax(axis=1))
    # 600 training images are enough to be far better than chance (10 %).
    assert (model.predict(images) == labels).mean() > 0.5


@pytest.mark.parametrize("name", list(REGISTRY))
def test_single_image_gives_one_row(fitted_models, small_test, name):
    probabilities = fitted_models[name].predict_proba(small_test[0][0])
    assert probabilities.shape == (1, 10)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_fitted_models_describe_themselves(fitted_models, name):
    model = fitted_models[name]
    complexity = model.complexity()
    assert len(complexity) == 1 and next(iter(complexity.values())) > 0
    assert model.get_params()["seed"] == 0
    assert model.training_notes()


def test_ensemble_without_members_is_a_value_error(small_train):
    with pytest.raises(ValueError, match="trained members"):
        build_model("ensemble").fit(*small_train)


def test_keras_models_record_history(fitted_models):
    for name in ("mlp", "cnn"):
        history = fitted_models[name].history_
        assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert len(history["loss"]) == TINY_EPOCHS


def test_wrong_input_shape_is_a_value_error(fitted_models):
    with pytest.raises(ValueError, match="28, 28"):
        fitted_models["cnn"].predict_proba(np.zeros((2, 32, 32), dtype=np.uint8))
    with pytest.raises(ValueError):
        as_image_batch(np.zeros(784))


def test_validation_split_is_disjoint_reproducible_and_bounded():
    train, held_out = validation_split(1000, 5000, seed=3)
    assert len(held_out) == 100 and len(train) == 900
    assert not set(train) & set(held_out)
    again, _ = validation_split(1000, 5000, seed=3)
    np.testing.assert_array_equal(train, again)
    with pytest.raises(ValueError):
        validation_split(5, 1, seed=0)


def test_shifted_copies_move_ink_one_pixel():
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, 10, 10] = 255
    copies, labels = shifted_copies(image, np.array([7]))
    positions = {tuple(np.argwhere(copy)[0]) for copy in copies}
    assert positions == {(10, 10), (11, 10), (9, 10), (10, 11), (10, 9)}
    assert labels.tolist() == [7] * 5


def test_training_is_reproducible_with_a_seed(small_train, small_test):
    images, labels = small_train
    first = tiny_model("mlp", seed=5).fit(images, labels).predict_proba(small_test[0])
    second = tiny_model("mlp", seed=5).fit(images, labels).predict_proba(small_test[0])
    np.testing.assert_allclose(first, second, atol=1e-5)


def test_networks_that_differ_only_in_initialisation_seed_share_the_held_out_split(small_train, monkeypatch):
    import digitlab.models.neural

    images, labels = small_train
    held_out = []

    def recording_split(count, validation_size, seed):
        parts = validation_split(count, validation_size, seed)
        held_out.append(parts[1])
        return parts

    monkeypatch.setattr(digitlab.models.neural, "validation_split", recording_split)
    first = tiny_model("cnn").fit(images, labels)
    second = build_model("cnn", epochs=TINY_EPOCHS, batch_size=32, initialisation_seed=1).fit(images, labels)
    again = build_model("cnn", epochs=TINY_EPOCHS, batch_size=32, initialisation_seed=1).fit(images, labels)

    assert len(held_out) == 3
    np.testing.assert_array_equal(held_out[0], held_out[1])
    assert second.get_params()["seed"] == first.get_params()["seed"] == 0
    assert second.get_params()["initialisation_seed"] == 1
    assert not np.array_equal(first.network_.get_weights()[0], second.network_.get_weights()[0])
    np.testing.assert_array_equal(second.network_.get_weights()[0], again.network_.get_weights()[0])


def test_the_ensemble_averages_the_cnn_with_its_own_extra_networks(fitted_models, small_test):
    ensemble = fitted_models["ensemble"]
    images = small_test[0][:20]
    assert set(ensemble.extra_networks_) == {f"cnn-seed{seed}" for seed in (1, 2, 3, 4)}
    assert set(ensemble.weights_) == set(REGISTRY["ensemble"].members)
    for network in ensemble.extra_networks_.values():
        assert network.get_params()["seed"] == ensemble.seed
        assert network.get_params()["epochs"] == TINY_EPOCHS
    committee = [fitted_models["cnn"], *ensemble.extra_networks_.values()]
    expected = sum(
        weight
        * (
            np.mean([model.predict_proba(images) for model in committee], axis=0)
            if name == "cnn"
            else fitted_models[name].predict_proba(images)
        )
        for name, weight in ensemble.weights_.items()
    )
    np.testing.assert_allclose(
        ensemble.predict_proba(images), expected / expected.sum(axis=1, keepdims=True), atol=1e-6
    )


def test_a_reading_is_the_most_probable_digit_and_knows_when_it_is_unsure():
    sure = Reading.from_probabilities("cnn", np.array([0.0, 0.95, *[0.05 / 8] * 8]))
    unsure = Reading.from_probabilities("svm", np.array([0.3, 0.6, 0.1, *[0.0] * 7]))

    assert (sure.digit, sure.confidence, sure.low_confidence) == (1, 0.95, False)
    assert (unsure.digit, unsure.low_confidence) == (1, True)
    assert unsure.to_json() == {
        "model": "svm",
        "digit": 1,
        "confidence": 0.6,
        "low_confidence": True,
        "probabilities": [0.3, 0.6, 0.1, *[0.0] * 7],
    }


def test_the_ensemble_runs_its_committee_in_one_traced_call_made_once_per_set_of_networks(fitted_models, small_test):
    ensemble = fitted_models["ensemble"]
    batch = network_input(small_test[0][:5])
    networks = [fitted_models["cnn"].network_, *(model.network_ for model in ensemble.extra_networks_.values())]
    first = ensemble._committee_forward()

    assert ensemble._committee_forward() is first
    expected = np.mean([np.asarray(network(batch, training=False)) for network in networks], axis=0)
    np.testing.assert_allclose(np.asarray(first(batch)), expected, atol=1e-6)
    # Other networks (a refit, a reload) make a new function.
    saved = ensemble.extra_networks_
    ensemble.extra_networks_ = dict(list(saved.items())[:1])
    try:
        assert ensemble._committee_forward() is not first
    finally:
        ensemble.extra_networks_ = saved


def test_many_networks_read_without_a_retracing_warning():
    # TensorFlow counts traces for the whole process and warns at most twice per traced function, so earlier tests
    # could use the warnings up: the networks are traced in a fresh interpreter.
    script = """
import numpy as np, keras
from digitlab.models.neural import traced_forward
layers = lambda: [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
networks = [keras.Sequential(layers()) for _ in range(7)]
batch = np.zeros((2, 28, 28, 1), dtype=np.float32)
for network in networks:
    np.testing.assert_allclose(np.asarray(traced_forward(network)(batch)), np.asarray(network(batch)), rtol=1e-6)
print("traced", len(networks))
"""
    # Seven networks: `predict --model all` traced six, and TensorFlow warned once five were traced from one lambda.
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "traced 7"
    assert "retracing" not in finished.stderr, finished.stderr
