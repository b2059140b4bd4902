"""Corruptions and attacks: shapes, ranges, determinism, and an attack that reaches the analytic minimum."""

import numpy as np
import pytest

from digitlab.insight import attacks
from digitlab.insight.corruptions import CORRUPTIONS, SEVERITIES, corrupt


@pytest.fixture(scope="module")
def digits(mnist_test):
    images, _ = mnist_test
    return images[:50]


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corruption_keeps_shape_and_range_changes_the_image_and_repeats_for_a_seed(digits, name):
    corrupted = corrupt(digits, name, seed=3)

    assert corrupted.shape == digits.shape and corrupted.dtype == np.uint8
    assert (corrupted != digits).any(axis=(1, 2)).mean() > 0.9, "nearly every image must change"
    np.testing.assert_array_equal(corrupt(digits, name, seed=3), corrupted)
    assert name in SEVERITIES


def test_random_corruptions_differ_between_seeds_and_unknown_ones_are_refused(digits):
    assert (corrupt(digits, "impulse noise", seed=1) != corrupt(digits, "impulse noise", seed=2)).any()
    with pytest.raises(ValueError, match="Unknown corruption 'smudge'"):
        corrupt(digits, "smudge")
    with pytest.raises(ValueError, match=r"Expected \(N, 28, 28\) images"):
        corrupt(digits[0], "blur")


def linear_model(weights: np.ndarray, bias: float):
    """A two-class linear model on 28x28 images: class 1 where weights . pixels + bias > 0."""

    def predict(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1) @ weights.ravel() + bias > 0).astype(np.int64)

    def gradient(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        # The loss rises as the score moves away from the label's side: -score for class 1, +score for class 0.
        signs = np.where(labels == 1, -1.0, 1.0)
        return signs[:, None, None] * np.broadcast_to(weights, images.shape)

    return predict, gradient


def test_the_smallest_flip_of_a_linear_model_is_its_analytic_minimum():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(28, 28))
    image = np.full((28, 28), 127.5)
    bias = 40.0 - float(weights.ravel() @ image.ravel())
    predict, gradient = linear_model(weights, bias)

    eps, changed = attacks.smallest_flip(gradient, predict, image, tolerance=1e-4)

    # Inside the ball every pixel may move by eps * 255 against its weight's sign: the score falls by
    # eps * 255 * sum|w|, so the answer flips exactly when that exceeds the score of 40.
    analytic = 40.0 / (255.0 * np.abs(weights).sum())
    assert eps == pytest.approx(analytic, abs=2e-4)
    assert predict(changed[None])[0] == 0 and predict(image[None])[0] == 1
    assert np.abs(changed - image).max() <= eps * 255 + 1e-3


def test_pgd_stays_in_its_ball_and_on_the_pixel_scale():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(28, 28))
    images = rng.uniform(0, 255, size=(4, 28, 28)).astype(np.float32)
    predict, gradient = linear_model(weights, 0.0)

    adversarial = attacks.pgd(gradient, images, predict(images), 0.1, seed=5)

    assert np.abs(adversarial - images).max() <= 0.1 * 255 + 1e-3
    assert adversarial.min() >= 0 and adversarial.max() <= 255
    assert (predict(adversarial) != predict(images)).all(), "a linear model with eps 0.1 is always flipped here"
    np.testing.assert_array_equal(attacks.pgd(gradient, images, predict(images), 0.1, seed=5), adversarial)
    with pytest.raises(ValueError, match="eps must be 0 or more"):
        attacks.pgd(gradient, images, predict(images), -0.1)


def test_pgd_raises_a_keras_networks_loss_and_never_its_accuracy(tiny_models_dir, mnist_test):
    from digitlab.persistence import load_model

    images, labels = mnist_test[0][:64], mnist_test[1][:64]
    model = load_model("mlp", tiny_models_dir)

    def loss(batch: np.ndarray) -> float:
        probabilities = model.predict_proba(batch)
        return float(-np.log(probabilities[np.arange(len(labels)), labels] + 1e-12).mean())

    attacked = attacks.pgd(attacks.keras_gradient(model.network_), images, labels, 0.1)

    assert loss(attacked) > loss(images) + 1.0
    assert (model.predict(attacked) == labels).mean() <= (model.predict(images) == labels).mean()
    assert np.abs(attacked - images).max() <= 0.1 * 255 + 1e-3


def test_robustness_is_measured_saved_and_refused_once_a_model_changes(tiny_models_dir, mnist_dir, tmp_path):
    import shutil

    from digitlab.insight import robustness as measured
    from digitlab.persistence import read_manifest, write_manifest

    folder = tmp_path / "models"
    shutil.copytree(tiny_models_dir, folder)
    stages = []

    result = measured.measure_robustness(folder, mnist_dir, test_size=40, progress=stages.append)
    measured.save_robustness(result, folder)
    loaded = measured.load_robustness(folder)

    assert loaded == result
    assert set(loaded.clean) == set(read_manifest(folder).models) and loaded.test_images == 40
    assert list(loaded.corruptions) == list(CORRUPTIONS)
    assert all(0 <= accuracy <= 1 for accuracies in loaded.corruptions.values() for accuracy in accuracies.values())
    assert loaded.mean_corruption_error("cnn") == pytest.approx(
        np.mean([1 - accuracies["cnn"] for accuracies in loaded.corruptions.values()])
    )
    assert set(loaded.attacks["mlp"]) == {"0.05", "0.1", "0.2"}
    assert loaded.attack_methods["mlp"] == "PGD on its own gradient"
    assert loaded.attack_methods["svm"] == "transfer: PGD images crafted on the cnn"
    assert loaded.attacked_directly("mlp") and not loaded.attacked_directly("svm")
    assert loaded.transfer_source("svm") == "cnn" and loaded.transfer_source("mlp") is None
    assert stages[0] == "clean test images" and any("corruption 12 of 12" in stage for stage in stages)

    manifest = read_manifest(folder)
    entry = manifest.models["mlp"]
    manifest.models["mlp"] = type(entry)(**{**vars(entry), "sha256": "0" * 64})
    write_manifest(manifest, folder)
    with pytest.raises(measured.RobustnessUnavailableError, match="measured on other models"):
        measured.load_robustness(folder)
    (folder / measured.ROBUSTNESS_NAME).write_text("{not json")
    with pytest.raises(measured.RobustnessUnavailableError, match="is damaged"):
        measured.load_robustness(folder)
    (folder / measured.ROBUSTNESS_NAME).unlink()
    with pytest.raises(measured.RobustnessUnavailableError, match="is missing; run 'python -m digitlab robustness"):
        measured.load_robustness(folder)


def test_the_attack_subset_is_fixed_sorted_and_within_the_test_set():
    from digitlab.insight.robustness import attack_subset

    subset = attack_subset(10_000)
    assert len(subset) == 1_000 and np.all(np.diff(subset) > 0) and subset.max() < 10_000
    np.testing.assert_array_equal(attack_subset(10_000), subset)
    assert len(attack_subset(40)) == 40


def test_every_models_smallest_flip_changes_its_answer_within_its_eps(tiny_models_dir, mnist_test):
    from digitlab.persistence import load_model

    models = {name: load_model(name, tiny_models_dir) for name in ("svm", "mlp", "cnn")}
    image = mnist_test[0][0]

    flips = attacks.smallest_flips(models, image)

    assert set(flips) == set(models)
    for name, found in flips.items():
        if found is None:
            continue
        eps, changed = found
        assert 0 < eps <= 0.5 and np.abs(changed - image).max() <= eps * 255 + 1e-3
        assert models[name].predict(changed[None])[0] != models[name].predict(image[None])[0]
    assert flips["mlp"] is not None and flips["cnn"] is not None, "eps 0.5 along a network's own gradient flips it"
