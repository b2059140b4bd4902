"""Training on the full 60,000 images: minutes, so marked slow and run with `make test-slow`."""

import pytest

from digitlab import load_model
from digitlab.training import train_and_record

pytestmark = pytest.mark.slow


def test_full_training_run_writes_a_model_that_evaluates_to_its_manifest(tmp_path, mnist_dir, mnist_test):
    entry = train_and_record("mlp", epochs=3, models_dir=tmp_path, data_dir=mnist_dir)
    assert entry.train_size == 60_000
    assert entry.accuracy > 0.97
    assert len(entry.history["val_accuracy"]) == 3
    reloaded = load_model("mlp", tmp_path)
    accuracy = (reloaded.predict(mnist_test[0]) == mnist_test[1]).mean()
    assert accuracy == pytest.approx(entry.accuracy, abs=1e-4)


def test_svm_on_a_quarter_of_the_training_set_passes_97_percent(tmp_path, mnist_dir):
    entry = train_and_record("svm", train_size=15_000, models_dir=tmp_path, data_dir=mnist_dir)
    assert entry.accuracy > 0.97
    assert entry.complexity["support_vectors"] > 1000
