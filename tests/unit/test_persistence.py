import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from digitlab import load_model, persistence, settings
from digitlab.checksums import sha256_file
from digitlab.errors import ModelUnavailableError
from digitlab.evaluation import evaluate_folder
from digitlab.manifest import Manifest
from digitlab.models.registry import REGISTRY
from digitlab.models.svm import SKOPS_TRUSTED_TYPES

MANIFEST_FIELDS = {
    "artifact",
    "sha256",
    "size_bytes",
    "hyperparameters",
    "seed",
    "train_size",
    "train_data_sha256",
    "library_versions",
    "complexity",
    "training_seconds",
    "metrics",
    "timing",
}


@pytest.fixture
def models_copy(tiny_models_dir, tmp_path):
    """A copy of the tiny models that a test may damage."""
    return shutil.copytree(tiny_models_dir, tmp_path / "models")


def record_new_svm_artifact(folder, artifact):
    """Make the manifest vouch for a rewritten SVM artefact, as retraining would."""
    manifest = persistence.read_manifest(folder)
    manifest.models["svm"] = replace(manifest.models["svm"], sha256=sha256_file(artifact))
    persistence.write_manifest(manifest, folder)


def test_manifest_records_what_each_model_is(tiny_models_dir):
    manifest = persistence.read_manifest(tiny_models_dir)
    assert set(manifest.models) == set(REGISTRY)
    for name, entry in manifest.models.items():
        assert set(entry.to_json()) >= MANIFEST_FIELDS, name
        assert entry.train_size == 800
        metrics = entry.metrics
        assert len(metrics.confusion_matrix) == 10 and sum(map(sum, metrics.confusion_matrix)) == 10_000
        assert len(metrics.per_class["f1"]) == 10
        assert entry.timing.batch_images == 10_000
        assert entry.library_versions["scikit-learn"]
    assert manifest.models["cnn"].history


@pytest.mark.parametrize("name", list(REGISTRY))
def test_loaded_models_reproduce_the_stored_probabilities(tiny_models_dir, mnist_test, name):
    model = load_model(name, tiny_models_dir)
    stored = persistence.load_test_probabilities(tiny_models_dir)[name]
    images = mnist_test[0][:200]
    np.testing.assert_allclose(model.predict_proba(images), stored[:200], atol=2e-3)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_a_loaded_model_reports_the_hyperparameters_it_was_trained_with(tiny_models_dir, name):
    recorded = persistence.read_manifest(tiny_models_dir).models[name].hyperparameters

    reported = json.loads(json.dumps(load_model(name, tiny_models_dir).get_params()))

    # The tiny models trained for 2 epochs, which a model rebuilt with the family's defaults would not say.
    assert reported == recorded
    if REGISTRY[name].trains_in_epochs:
        assert reported["epochs"] == 2


def test_an_ensemble_whose_member_cannot_be_loaded_names_it(models_copy):
    (models_copy / "svm.skops").write_bytes(b"damaged")

    with pytest.raises(ModelUnavailableError, match="The ensemble model needs the svm model"):
        load_model("ensemble", models_copy)


def test_stored_probabilities_match_the_manifest_accuracy(tiny_models_dir, mnist_test):
    manifest = persistence.read_manifest(tiny_models_dir)
    for name, probabilities in persistence.load_test_probabilities(tiny_models_dir).items():
        assert probabilities.shape == (10_000, 10)
        accuracy = (probabilities.argmax(axis=1) == mnist_test[1]).mean()
        assert accuracy == pytest.approx(manifest.models[name].accuracy, abs=2e-4)


@pytest.mark.parametrize("name", ["cnn", "svm"])
def test_tampered_artifact_is_refused(models_copy, name):
    artifact = models_copy / persistence.read_manifest(models_copy).models[name].artifact
    with open(artifact, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelUnavailableError, match="does not match the manifest"):
        load_model(name, models_copy)


def test_missing_artifact_names_the_fix(models_copy):
    (models_copy / "mlp.keras").unlink()
    with pytest.raises(ModelUnavailableError, match="train --model mlp"):
        load_model("mlp", models_copy)


def test_unknown_model_and_empty_folder(tmp_path):
    with pytest.raises(ModelUnavailableError, match="Unknown model"):
        load_model("forest", tmp_path)
    with pytest.raises(ModelUnavailableError, match="No trained svm"):
        load_model("svm", tmp_path)


def test_unreadable_manifest_is_a_clear_error(models_copy):
    (models_copy / persistence.MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ModelUnavailableError, match="not a readable manifest"):
        load_model("cnn", models_copy)


def test_skops_refuses_types_outside_the_trusted_list(models_copy):
    import operator

    import skops.io
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    # skops trusts scikit-learn's and numpy's own types by default; a plain Python function is outside the list.
    artifact = models_copy / "svm.skops"
    skops.io.dump(make_pipeline(FunctionTransformer(operator.neg)), artifact)
    record_new_svm_artifact(models_copy, artifact)
    with pytest.raises(ModelUnavailableError, match="could not be loaded.*Untrusted types.*_operator.neg"):
        load_model("svm", models_copy)


def test_evaluate_recomputes_the_manifest_and_reports_differences(models_copy, mnist_dir):
    table, differences = evaluate_folder(models_copy, mnist_dir)
    assert differences == []
    assert table.count("matches") == len(REGISTRY)
    manifest = json.loads((models_copy / "manifest.json").read_text())
    manifest["models"]["mlp"]["metrics"]["accuracy"] = 0.5
    (models_copy / "manifest.json").write_text(json.dumps(manifest))
    table, differences = evaluate_folder(models_copy, mnist_dir)
    assert any(line.startswith("mlp: accuracy") for line in differences)
    assert "DIFFERS" in table


@pytest.mark.parametrize("keep", [0, 100, 2000])
def test_damaged_probability_file_is_a_clear_error(models_copy, keep):
    path = models_copy / persistence.PROBABILITIES_NAME
    path.write_bytes(path.read_bytes()[:keep] if keep else b"garbage")
    with pytest.raises(ModelUnavailableError, match="damaged"):
        persistence.load_test_probabilities(models_copy)


def test_save_atomically_replaces_the_file_whole_or_not_at_all(tmp_path):
    from digitlab.atomic import save_atomically

    path = tmp_path / "probabilities.npz"
    save_atomically(path, lambda temporary: np.savez(temporary, values=np.arange(3)))
    np.testing.assert_array_equal(np.load(path)["values"], np.arange(3))

    def fail_halfway(temporary):
        temporary.write_bytes(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_atomically(path, fail_halfway)
    np.testing.assert_array_equal(np.load(path)["values"], np.arange(3))
    assert sorted(item.name for item in tmp_path.iterdir()) == ["probabilities.npz"]


def test_json_records_are_written_indented_with_a_final_newline(tmp_path):
    from digitlab.atomic import write_json_atomically

    path = tmp_path / "folder" / "record.json"
    write_json_atomically(path, {"seed": 0, "models": {"cnn": [0.5, None]}})
    assert path.read_text() == '{\n "seed": 0,\n "models": {\n  "cnn": [\n   0.5,\n   null\n  ]\n }\n}\n'
    write_json_atomically(path, ["replaced"])
    assert json.loads(path.read_text()) == ["replaced"]
    assert [item.name for item in path.parent.iterdir()] == ["record.json"]


def test_an_svm_saved_before_the_features_moved_still_loads(models_copy, monkeypatch, mnist_test):
    import skops.io

    from digitlab.models import features

    model = load_model("svm", models_copy)
    artifact = models_copy / "svm.skops"
    # Users' runs and promoted models hold SVMs whose feature steps are named digitlab.features.*.
    for step in (features.Deskew, features.GlobalScaler):
        monkeypatch.setattr(step, "__module__", "digitlab.features")
    skops.io.dump(model.estimator_, artifact)
    monkeypatch.undo()
    assert "digitlab.features.Deskew" in {*skops.io.get_untrusted_types(file=artifact), *SKOPS_TRUSTED_TYPES}
    record_new_svm_artifact(models_copy, artifact)

    reloaded = load_model("svm", models_copy)

    images = mnist_test[0][:50]
    np.testing.assert_array_equal(reloaded.predict_proba(images), model.predict_proba(images))


def test_a_loaded_ensembles_own_networks_keep_their_seeds(tiny_models_dir):
    ensemble = load_model("ensemble", tiny_models_dir)

    for name, network in ensemble.extra_networks_.items():
        assert name == f"cnn-seed{network.get_params()['initialisation_seed']}"
        assert network.get_params()["seed"] == ensemble.seed


def test_the_models_installed_inside_the_package_are_never_written_to(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "PACKAGED_MODELS_DIR", tmp_path)

    with pytest.raises(ModelUnavailableError, match="installed with the package"):
        persistence.write_manifest(Manifest(), tmp_path)
    assert not any(tmp_path.iterdir())
