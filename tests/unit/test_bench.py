import json

import numpy as np
import pytest

from digitlab.checks.bench import benchmark_table, run_benchmark, time_robustness
from digitlab.export import export_model
from digitlab.insight.corruptions import CORRUPTIONS
from digitlab.models.ensemble import simplex_grid
from digitlab.models.exported import ONNXClassifier, TFLiteClassifier
from digitlab.models.registry import REGISTRY


def test_simplex_grid_covers_every_weighting():
    grid = simplex_grid(3, 4)
    assert len(grid) == 15
    for weights in grid:
        assert weights.min() >= 0 and weights.sum() == pytest.approx(1.0)


def test_ensemble_weights_are_a_distribution_and_it_is_no_worse_than_its_weakest_member(tiny_models_dir, mnist_dir):
    from digitlab.persistence import read_manifest

    entries = read_manifest(tiny_models_dir).models
    entry = entries["ensemble"]
    weights = entry.training_notes["weights"]
    assert set(weights) == set(REGISTRY["ensemble"].members)
    assert entry.extra_artifacts == [f"ensemble-cnn-seed{seed}.keras" for seed in (1, 2, 3, 4)]
    assert entry.size_bytes == sum((tiny_models_dir / name).stat().st_size for name in entry.files)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert entry.accuracy >= min(entries[name].accuracy for name in weights)


def test_ensemble_refuses_members_it_was_not_fitted_to(tiny_models_dir, tmp_path):
    import shutil
    from dataclasses import replace

    from digitlab import load_model, persistence
    from digitlab.errors import ModelUnavailableError

    folder = shutil.copytree(tiny_models_dir, tmp_path / "models")
    manifest = persistence.read_manifest(folder)
    manifest.models["mlp"] = replace(manifest.models["mlp"], sha256="0" * 64)
    persistence.write_manifest(manifest, folder)
    with pytest.raises(ModelUnavailableError, match="another mlp model|does not match"):
        load_model("ensemble", folder)


def test_ensemble_refuses_a_damaged_extra_network(tiny_models_dir, tmp_path):
    import shutil

    from digitlab import load_model
    from digitlab.errors import ModelUnavailableError

    folder = shutil.copytree(tiny_models_dir, tmp_path / "models")
    with open(folder / "ensemble-cnn-seed2.keras", "ab") as network:
        network.write(b"tampered")
    with pytest.raises(ModelUnavailableError, match="ensemble-cnn-seed2.keras was modified or damaged"):
        load_model("ensemble", folder)


@pytest.fixture(scope="module")
def benchmark(tiny_models_dir, mnist_dir, tmp_path_factory):
    export_model("mlp", tiny_models_dir, mnist_dir)
    export_model("mlp", tiny_models_dir, mnist_dir, format="onnx")
    output = tmp_path_factory.mktemp("bench") / "benchmark.json"
    results = run_benchmark(
        tiny_models_dir,
        mnist_dir,
        reference=True,
        reference_epochs=1,
        train_size=600,
        latency_calls=5,
        flip_drawings=2,
        output=output,
    )
    return results, output


def test_benchmark_writes_well_formed_json(benchmark):
    results, output = benchmark
    written = json.loads(output.read_text())
    assert set(written["models"]) == set(REGISTRY)
    for measured in written["models"].values():
        assert 0 <= measured["accuracy"] <= 1
        assert measured["single_image"]["p50_ms"] <= measured["single_image"]["p95_ms"]
        assert measured["peak_memory_mb"] > 0 and measured["size_bytes"] > 0
        assert measured["throughput_images_per_second"] > 0
    assert written["reference"]["epochs"] == 1 and written["reference"]["train_size"] == 600
    assert set(written["cnn_vs_reference"]) == {"accuracy_ratio", "error_ratio", "training_time_ratio", "latency_ratio"}
    assert written["canvas_pipeline"]["p50_ms"] > 0
    assert set(written["explanations"]) == set(REGISTRY)
    assert all(0 < timing["p50_ms"] <= timing["max_ms"] for timing in written["explanations"].values())
    assert written["layer_views"]["views"] == ["cnn", "mlp", "svm"]
    assert 0 < written["layer_views"]["all_views"]["p50_ms"] <= written["layer_views"]["all_views"]["p95_ms"]
    assert "Inside-the-models views (CNN, MLP, SVM) of one drawing: p50" in benchmark_table(written)
    flips = written["smallest_flips"]
    assert flips["models"] == list(REGISTRY) and flips["drawings"] == 2
    assert 0 < flips["all_models"]["p50_ms"] <= flips["all_models"]["p95_ms"]
    assert "How small a change flips it (every model's search on one drawing, over 2 drawings): p50" in benchmark_table(
        written
    )
    # The whole robustness measurement is timed only when asked for: it takes minutes.
    assert "robustness" not in written
    assert "tflite" in written["models"]["mlp"] and "onnx" in written["models"]["mlp"]
    exported = written["models"]["mlp"]["onnx"]
    assert 0 <= exported["accuracy"] <= 1 and exported["size_bytes"] > 0
    assert exported["single_image"]["p50_ms"] <= exported["single_image"]["p95_ms"]
    # Only the models with an export file get an entry for it.
    assert "onnx" not in written["models"]["cnn"]


def test_benchmark_accuracy_matches_the_manifest(benchmark, tiny_models_dir):
    from digitlab.persistence import read_manifest

    results, _ = benchmark
    manifest = read_manifest(tiny_models_dir)
    for name, measured in results["models"].items():
        assert measured["accuracy"] == pytest.approx(manifest.models[name].accuracy, abs=2e-4)


def test_benchmark_table_has_a_row_per_model_and_the_reference(benchmark):
    results = benchmark[0]
    table = benchmark_table(results)
    assert table.startswith(f"Measured on {results['measured_at'][:10]} on {results['machine']['cpus']} CPU cores.")
    for name in REGISTRY:
        assert f"| {name} |" in table
    assert "reference convnet (1 epochs)" in table and "mlp (TFLite)" in table and "mlp (ONNX)" in table
    assert "Canvas drawing" in table


def test_tflite_export_agrees_with_keras(tiny_models_dir, mnist_dir, mnist_test):
    from digitlab import load_model

    report = export_model("cnn", tiny_models_dir, mnist_dir, output=tiny_models_dir / "cnn-test.tflite")
    assert report["parity_ok"] and report["agreement"] >= 0.999
    lite = TFLiteClassifier(report["path"])
    images = mnist_test[0][:64]
    np.testing.assert_allclose(
        lite.predict_proba(images), load_model("cnn", tiny_models_dir).predict_proba(images), atol=1e-4
    )


def test_onnx_export_agrees_with_keras_and_prints_nothing(tiny_models_dir, mnist_dir, mnist_test, capsys):
    from digitlab import load_model

    output = tiny_models_dir / "cnn-test.onnx"
    report = export_model("cnn", tiny_models_dir, mnist_dir, output=output, format="onnx")
    assert report["parity_ok"] and report["agreement"] >= 0.999 and report["format"] == "onnx"
    assert report["keras_accuracy"] - report["onnx_accuracy"] <= 0.0005
    assert capsys.readouterr().out == ""
    # The file is written beside its destination under another name and renamed; nothing else is left.
    assert not [path for path in tiny_models_dir.iterdir() if path.name.startswith(".cnn-test.onnx")]
    exported = ONNXClassifier(report["path"])
    images = mnist_test[0][:64]
    probabilities = exported.predict_proba(images)
    np.testing.assert_allclose(probabilities, load_model("cnn", tiny_models_dir).predict_proba(images), atol=1e-4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert exported.predict_proba(images[0]).shape == (1, 10)


def test_the_onnx_export_leaves_out_the_augmentation_layers(tiny_models_dir):
    from digitlab import load_model
    from digitlab.export import inference_network

    model = load_model("cnn", tiny_models_dir)
    network = inference_network(model)
    assert not [layer for layer in network.layers if layer.name.startswith("random_")]
    assert [layer.name for layer in model.network_.layers if not layer.name.startswith("random_")] == [
        layer.name for layer in network.layers
    ]
    assert network.count_params() == model.network_.count_params()


@pytest.mark.parametrize("export_format", ["tflite", "onnx"])
def test_only_keras_models_can_be_exported(tiny_models_dir, export_format):
    with pytest.raises(ValueError, match="Only the Keras models"):
        export_model("svm", tiny_models_dir, format=export_format)


def test_an_unknown_export_format_is_refused(tiny_models_dir):
    with pytest.raises(ValueError, match="Unknown export format 'coreml'"):
        export_model("cnn", tiny_models_dir, format="coreml")


def test_reuse_keeps_the_svms_fit_and_the_ensembles_networks_and_fits_the_rest(tiny_models_dir, mnist_dir, tmp_path):
    import shutil

    from digitlab import load_model, persistence
    from digitlab.checksums import sha256_file
    from digitlab.data.mnist import load_mnist
    from digitlab.errors import ModelUnavailableError
    from digitlab.training import train_and_record

    folder = shutil.copytree(tiny_models_dir, tmp_path / "models")
    networks = sorted(folder.glob("ensemble-cnn-seed*.keras"))
    before = {path.name: sha256_file(path) for path in networks}
    saved_svm = load_model("svm", folder)
    saved_seconds = persistence.read_manifest(folder).models["svm"].training_seconds

    svm_entry = train_and_record("svm", train_size=800, models_dir=folder, data_dir=mnist_dir, reuse=True)

    test_images = load_mnist("test", mnist_dir)[0][:200]
    reused_svm = load_model("svm", folder)
    np.testing.assert_array_equal(reused_svm.predict(test_images), saved_svm.predict(test_images))
    assert reused_svm.complexity() == saved_svm.complexity()
    assert svm_entry.training_seconds >= saved_seconds
    assert "kept as it was" in svm_entry.training_notes["calibration"]
    # The ensemble was fitted to the SVM file that changed, so it is refused until its weights are chosen again.
    with pytest.raises(ModelUnavailableError, match="another svm model"):
        load_model("ensemble", folder)

    entry = train_and_record("ensemble", epochs=2, train_size=800, models_dir=folder, data_dir=mnist_dir, reuse=True)

    assert {path.name: sha256_file(path) for path in networks} == before
    assert "networks reused" in entry.training_notes["cnn_committee"]
    ensemble = load_model("ensemble", folder)
    assert sorted(ensemble.extra_networks_) == ["cnn-seed1", "cnn-seed2", "cnn-seed3", "cnn-seed4"]


def test_an_ensemble_with_a_style_share_fine_tunes_each_saved_network_on_writing_styles(
    tiny_models_dir, mnist_dir, tmp_path
):
    import json
    import shutil

    from digitlab import load_model
    from digitlab.checksums import sha256_file
    from digitlab.training import train_and_record

    folder = shutil.copytree(tiny_models_dir, tmp_path / "models")
    saved = json.loads((folder / "ensemble.json").read_text())["extra_networks"]

    entry = train_and_record(
        "ensemble",
        reuse=True,
        style_share=0.05,
        keep_start=0.3,
        epochs=1,
        train_size=800,
        models_dir=folder,
        data_dir=mnist_dir,
    )

    ensemble = load_model("ensemble", folder)
    assert sorted(ensemble.extra_networks_) == sorted(saved)
    for network in saved.values():
        # Each network was trained further and saved again, from the file of its own seed.
        assert sha256_file(folder / network["artifact"]) != network["sha256"]
    notes = entry.training_notes
    assert "each fine-tuned from the ensemble's saved network of its seed for up to 1 epochs" in notes["cnn_committee"]
    assert sorted(notes["extra_networks"]) == sorted(saved)
    for network_notes in notes["extra_networks"].values():
        assert "extra examples made from the training part" in network_notes["writing_styles"]
        assert network_notes["weights_blended"].startswith("0.3 of each weight kept from the starting network")
    assert entry.hyperparameters["style_share"] == 0.05

    # Chosen again for another member, the weights keep the networks and the record of how they were fine-tuned.
    kept = train_and_record("ensemble", reuse=True, epochs=1, train_size=800, models_dir=folder, data_dir=mnist_dir)

    assert "networks reused" in kept.training_notes["cnn_committee"]
    assert kept.training_notes["extra_networks"] == notes["extra_networks"]


def test_an_ensemble_fine_tunes_each_network_from_the_saved_file_of_its_seed(tiny_models_dir, small_train):
    import json

    from digitlab import load_model
    from digitlab.checksums import sha256_file

    saved = load_model("ensemble", tiny_models_dir)
    members = {name: load_model(name, tiny_models_dir) for name in saved.members}
    files = json.loads((tiny_models_dir / "ensemble.json").read_text())["extra_networks"]
    ensemble = type(saved)(epochs=1, keep_start=0.5)

    ensemble.fit(*small_train, members=members, reuse_from=tiny_models_dir / "ensemble.json")

    for name, network in ensemble.extra_networks_.items():
        assert network.started_from_sha256_ == sha256_file(tiny_models_dir / files[name]["artifact"])
        assert network.initialisation_seed == files[name]["initialisation_seed"]
        assert network.keep_start == 0.5


def test_an_ensemble_refuses_to_blend_networks_it_did_not_start_from_saved_ones(tiny_models_dir, small_train):
    from digitlab import load_model

    saved = load_model("ensemble", tiny_models_dir)
    members = {name: load_model(name, tiny_models_dir) for name in saved.members}
    with pytest.raises(ValueError, match="needs a saved network to reuse"):
        type(saved)(epochs=1, keep_start=0.3).fit(*small_train, members=members)


def test_reuse_fine_tunes_a_saved_network_starting_from_its_weights(tiny_models_dir, mnist_dir, tmp_path):
    import shutil

    from digitlab import load_model, persistence
    from digitlab.checksums import sha256_file
    from digitlab.training import train_and_record

    folder = shutil.copytree(tiny_models_dir, tmp_path / "models")
    saved_sha256 = sha256_file(folder / "cnn.keras")
    saved_kernel = load_model("cnn", folder).network_.get_layer("block1_conv1").get_weights()[0]
    saved_seconds = persistence.read_manifest(folder).models["cnn"].training_seconds
    # At a learning rate of 0 training moves no weight, so the kernels show where training started.
    options = {"epochs": 1, "train_size": 800, "models_dir": folder, "data_dir": mnist_dir, "learning_rate": 0.0}

    entry = train_and_record("cnn", reuse=True, **options)

    kernel = load_model("cnn", folder).network_.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(kernel, saved_kernel)
    assert saved_sha256 in entry.training_notes["started_from"]
    assert entry.training_seconds >= saved_seconds
    train_and_record("cnn", **options)
    fresh_kernel = load_model("cnn", folder).network_.get_layer("block1_conv1").get_weights()[0]
    assert not np.allclose(fresh_kernel, saved_kernel)


def test_keeping_a_share_of_the_start_blends_every_fine_tuned_weight_with_the_starting_one(
    tiny_models_dir, mnist_dir, tmp_path, monkeypatch
):
    import shutil

    from digitlab import load_model
    from digitlab.models import neural
    from digitlab.training import train_and_record

    folder = shutil.copytree(tiny_models_dir, tmp_path / "models")
    start = [weight.copy() for weight in load_model("cnn", folder).network_.get_weights()]
    # The fine-tuned weights are caught on their way into the blend, as nothing else shows them.
    blend = neural.KerasClassifier._blend_with_start
    tuned = []

    def watched(self, network, start_weights, data):
        tuned.extend(weight.copy() for weight in network.get_weights())
        return blend(self, network, start_weights, data)

    monkeypatch.setattr(neural.KerasClassifier, "_blend_with_start", watched)

    entry = train_and_record(
        "cnn", reuse=True, keep_start=0.25, epochs=1, train_size=800, models_dir=folder, data_dir=mnist_dir
    )

    blended = load_model("cnn", folder).network_.get_weights()
    assert len(tuned) == len(start) == len(blended)
    assert not all(np.allclose(first, last) for first, last in zip(start, tuned, strict=True))
    for first, last, mixed in zip(start, tuned, blended, strict=True):
        np.testing.assert_allclose(mixed, 0.25 * first + 0.75 * last, rtol=1e-5, atol=1e-6)
    assert entry.hyperparameters["keep_start"] == 0.25
    assert "0.25 of each weight kept from the starting network" in entry.training_notes["weights_blended"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keep_start": 0.3}, "needs a saved network to reuse"),
        ({"keep_start": 1.0, "reuse": True}, "from 0 to below 1, not 1.0"),
    ],
)
def test_a_blend_without_a_start_or_with_nothing_of_the_fine_tuning_is_refused(
    tiny_models_dir, mnist_dir, options, message
):
    from digitlab.training import train_and_record

    with pytest.raises(ValueError, match=message):
        train_and_record("cnn", epochs=1, train_size=800, models_dir=tiny_models_dir, data_dir=mnist_dir, **options)


def test_a_reused_network_starts_from_the_fine_tuning_settings_unless_told_otherwise():
    from digitlab.models.neural import KerasClassifier
    from digitlab.training import build_model

    fine_tuning = build_model("cnn", reuse=True)
    assert (fine_tuning.epochs, fine_tuning.learning_rate) == (
        KerasClassifier.reuse_settings["epochs"],
        KerasClassifier.reuse_settings["learning_rate"],
    )
    assert build_model("cnn", reuse=True, epochs=3).epochs == 3
    assert build_model("cnn").epochs != KerasClassifier.reuse_settings["epochs"]


def test_reuse_is_refused_for_a_family_with_nothing_to_reuse(tiny_models_dir, mnist_dir, monkeypatch):
    from digitlab.errors import ModelUnavailableError
    from digitlab.models.neural import MLPClassifier
    from digitlab.training import train_and_record

    monkeypatch.setattr(MLPClassifier, "reuses", None)
    with pytest.raises(ModelUnavailableError, match="has nothing it can reuse"):
        train_and_record("mlp", epochs=1, train_size=800, models_dir=tiny_models_dir, data_dir=mnist_dir, reuse=True)


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("cnn", {"seed": 1}, r"other settings \(seed\)"),
        ("cnn", {"recipe": "quick"}, r"other settings \(recipe\)"),
        ("svm", {"C": 3.0}, r"other settings \(C\)"),
        ("ensemble", {"extra_cnn_seeds": (1, 2)}, r"other settings \(extra_cnn_seeds\)"),
        ("svm", {"train_size": 900}, "trained on other images"),
    ],
)
def test_reuse_refuses_what_it_cannot_reuse(tiny_models_dir, mnist_dir, name, settings, message):
    from digitlab.errors import ModelUnavailableError
    from digitlab.training import train_and_record

    options = {"epochs": 2, "train_size": 800, **settings}
    with pytest.raises(ModelUnavailableError, match=message):
        train_and_record(name, models_dir=tiny_models_dir, data_dir=mnist_dir, reuse=True, **options)


def test_the_robustness_measurement_is_timed_without_writing_its_file(tiny_models_dir, mnist_dir):
    before = sorted(path.name for path in tiny_models_dir.iterdir())
    timed = time_robustness(str(tiny_models_dir), mnist_dir, test_size=50)
    assert timed["seconds"] > 0 and timed["models"] == list(REGISTRY)
    assert timed["corruptions"] == len(CORRUPTIONS) and timed["test_images"] == 50 and timed["attack_images"] == 50
    assert sorted(path.name for path in tiny_models_dir.iterdir()) == before
    table = benchmark_table({"models": {}, "canvas_pipeline": {"p50_ms": 1.0, "p95_ms": 2.0}, "robustness": timed})
    assert f"`python -m digitlab robustness` (4 models, {len(CORRUPTIONS)} corruptions of 50 test images" in table
