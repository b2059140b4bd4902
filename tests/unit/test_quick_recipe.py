"""The quick training recipe and the time-to-accuracy curves that the benchmark compares it by."""

import numpy as np
import pytest

from digitlab.checks.time_to_accuracy import (
    MEASUREMENTS_PER_EPOCH,
    Curve,
    accuracy_clock,
    compare_curves,
    time_to_accuracy_table,
)
from digitlab.models.neural import CNNClassifier, MLPClassifier, endless_shuffled_batches
from digitlab.training import build_model


def test_the_quick_recipe_starts_from_the_familys_quick_settings_and_the_callers_win():
    quick = build_model("cnn", recipe="quick")
    assert quick.get_params() == {**CNNClassifier().get_params(), **CNNClassifier.quick_settings, "recipe": "quick"}
    assert build_model("mlp", recipe="quick", epochs=1).epochs == 1
    assert build_model("mlp", recipe="quick", augment=True).augment is True
    assert build_model("mlp", recipe="full").get_params() == MLPClassifier().get_params()


def test_a_family_with_one_recipe_refuses_a_recipe():
    with pytest.raises(ValueError, match="one training recipe"):
        build_model("svm", recipe="quick")


def test_an_unknown_recipe_is_refused_before_training(small_train):
    with pytest.raises(ValueError, match="Unknown training recipe 'fast'"):
        MLPClassifier(recipe="fast").fit(*small_train)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_the_quick_recipe_trains_the_smaller_network_and_learns(name, small_train, small_test):
    model = build_model(name, recipe="quick", epochs=3, batch_size=32).fit(*small_train)

    # The quick CNN is a network of its own; the quick MLP is the shipped MLP's network without dropout.
    assert model.network_.name == {"cnn": "quick_cnn", "mlp": "mlp"}[name]
    dropouts = [layer.rate for layer in model.network_.layers if "dropout" in layer.name]
    assert all(rate == 0.0 for rate in dropouts)
    assert len(model.history_["val_accuracy"]) == 3
    assert "one-cycle" in model.training_notes()["recipe"]
    assert (model.predict(small_test[0]) == small_test[1]).mean() > 0.6


def test_the_quick_recipes_stream_gives_every_image_once_a_pass_in_a_new_order_each_pass():
    # Each image's pixels and its label hold its index, so a batch shows which images it gathered.
    count, batch_size = 12, 4
    images = np.broadcast_to(np.arange(count, dtype=np.uint8)[:, None, None, None], (count, 28, 28, 1)).copy()
    labels = np.eye(count, dtype=np.float32)
    stream = endless_shuffled_batches(images, labels, batch_size, seed=0)

    passes = []
    batches = iter(stream)
    for _ in range(3):
        order = []
        for _ in range(count // batch_size):
            pixels, targets = (part.numpy() for part in next(batches))
            assert pixels.shape == (batch_size, 28, 28, 1) and pixels.dtype == np.uint8
            assert np.array_equal(pixels[:, 0, 0, 0], targets.argmax(axis=1))
            order.extend(pixels[:, 0, 0, 0].tolist())
        passes.append(order)

    assert all(sorted(order) == list(range(count)) for order in passes)
    assert len({tuple(order) for order in passes}) == 3


def test_the_quick_cnn_is_smaller_than_the_full_one():
    from digitlab.models.networks import build_cnn, build_quick_cnn

    assert build_quick_cnn().count_params() < build_cnn().count_params() / 5


def test_the_clock_measures_the_test_set_each_quarter_epoch_and_keeps_that_time_off(small_train, small_test):
    import time

    model = build_model("mlp", recipe="quick", epochs=2, batch_size=20)
    steps_per_epoch = len(model.training_part(len(small_train[1]))) // model.batch_size
    started = time.perf_counter()
    # A test set large enough that measuring it takes a noticeable share of the run.
    images, labels = np.repeat(small_test[0], 20, axis=0), np.repeat(small_test[1], 20)
    clock = accuracy_clock(images, labels, steps_per_epoch, started)
    model.fit(*small_train, callbacks=[clock])
    elapsed = time.perf_counter() - started

    assert len(clock.seconds) == 2 * MEASUREMENTS_PER_EPOCH + (steps_per_epoch % MEASUREMENTS_PER_EPOCH > 0)
    assert np.all(np.diff(clock.seconds) > 0)
    assert all(0.0 <= accuracy <= 1.0 for accuracy in clock.accuracy)
    assert clock.paused > 0 and clock.seconds[-1] <= elapsed - clock.paused + 1e-6
    assert clock.accuracy[-1] == pytest.approx((model.predict(images) == labels).mean())


def test_the_first_measurement_at_an_accuracy_is_when_a_curve_reaches_it():
    curve = Curve("quick CNN", 2, [1.0, 2.0, 3.0, 4.0], [0.97, 0.991, 0.989, 0.993])
    assert curve.seconds_to(0.99) == 2.0
    assert curve.seconds_to(0.993) == 4.0
    assert curve.seconds_to(0.995) is None
    assert (curve.training_seconds, curve.final_accuracy) == (4.0, 0.993)


def test_the_comparison_gives_the_ratios_to_the_references_whole_training_time():
    quick = Curve("quick CNN", 4, [5.0, 10.0, 20.0], [0.985, 0.991, 0.9926])
    reference = Curve("reference", 15, [50.0, 100.0, 200.0], [0.98, 0.99, 0.9924])
    comparison = compare_curves("cnn", quick, reference)

    assert comparison["quick_seconds_to_reference_final"] == 20.0
    assert comparison["ratio_to_reference_final"] == pytest.approx(0.1)
    assert comparison["quick_seconds_to_milestone"] == 10.0
    assert comparison["ratio_to_milestone"] == pytest.approx(0.05)
    assert comparison["reference_seconds_to_milestone"] == 100.0

    never = compare_curves("cnn", Curve("slow", 1, [5.0], [0.95]), reference)
    assert never["ratio_to_milestone"] is None and never["ratio_to_reference_final"] is None
    table = time_to_accuracy_table({"cnn": {"quick": {"epochs": 1}, "reference": {"epochs": 15}, "comparison": never}})
    assert "not reached" in table and "CNN: 1 vs 15 epochs" in table
