"""Recording trained models: the manifest lists them in the registry's order, whatever order they were trained in."""

from digitlab import persistence
from digitlab.training import registry_position, train_and_record


def test_manifest_follows_the_registry_order(tmp_path, mnist_dir):
    train_and_record("mlp", epochs=1, train_size=300, models_dir=tmp_path, data_dir=mnist_dir)
    train_and_record("svm", train_size=300, shifted_copies=False, models_dir=tmp_path, data_dir=mnist_dir)
    assert list(persistence.read_manifest(tmp_path).models) == ["svm", "mlp"]


def test_unknown_names_come_after_every_registered_family():
    assert registry_position("svm") < registry_position("ensemble") < registry_position("not-a-family")
