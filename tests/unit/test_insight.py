import numpy as np
import pytest

from digitlab import cli, settings
from digitlab.insight.artefact import (
    INSIGHT_NAME,
    InsightUnavailableError,
    compute_insight,
    load_insight,
    recompute_command,
    save_insight,
)
from digitlab.manifest import Manifest, ModelEntry
from digitlab.persistence import write_manifest


def manifest_with_cnn(sha256: str) -> Manifest:
    return Manifest(models={"cnn": ModelEntry(artifact="cnn.keras", sha256=sha256)})


class TinyKerasModel:
    """A stand-in for a KerasClassifier: a small untrained network behind ``network_``."""

    def __init__(self):
        import keras

        keras.utils.set_random_seed(0)
        self.network_ = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Rescaling(1 / 255),
                keras.layers.Flatten(),
                keras.layers.Dense(8),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )


@pytest.fixture
def insight_folder(tmp_path, small_train, small_test):
    """A models folder whose manifest names a cnn, with an insight artefact computed on small data."""
    train_images, train_labels = small_train
    test_images, _ = small_test
    coordinates, neighbours, seconds = compute_insight(
        TinyKerasModel(), train_images, train_labels, test_images[:50], per_class=3, method="pca"
    )
    write_manifest(manifest_with_cnn("abc"), tmp_path)
    save_insight(tmp_path, coordinates, neighbours, {"source_model": "cnn", "source_sha256": "abc"})
    return tmp_path, train_labels, seconds


def test_the_artefact_round_trips_small_and_points_at_training_images_of_each_digit(insight_folder):
    folder, train_labels, seconds = insight_folder

    insight = load_insight(folder)

    assert insight.coordinates.shape == (50, 2) and insight.neighbours.shape == (50, 10, 3)
    assert all(set(train_labels[insight.neighbours[:, digit].ravel()]) == {digit} for digit in range(10))
    assert insight.about["source_sha256"] == "abc"
    assert set(seconds) == {"embedding", "neighbours", "map"}
    with np.load(folder / INSIGHT_NAME) as archive:
        assert archive["coordinates"].dtype == np.float16 and archive["neighbours"].dtype == np.uint16


def test_a_retrained_source_model_makes_the_artefact_stale(insight_folder):
    folder, _, _ = insight_folder
    write_manifest(manifest_with_cnn("retrained"), folder)

    with pytest.raises(InsightUnavailableError, match="another cnn model"):
        load_insight(folder)


def test_an_artefact_that_names_no_source_model_is_refused(tmp_path):
    write_manifest(manifest_with_cnn("abc"), tmp_path)
    save_insight(tmp_path, np.zeros((4, 2)), np.zeros((4, 10, 1), dtype=np.int64), {})

    with pytest.raises(InsightUnavailableError, match="out of date"):
        load_insight(tmp_path)


def test_the_advice_names_a_models_folder_other_than_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv(settings.MODELS_DIR_VARIABLE, raising=False)
    assert recompute_command(settings.models_dir()) == "python -m digitlab insight"
    # Promoted models live outside the default folder, where the command would not write without being told.
    with pytest.raises(InsightUnavailableError, match=f"'python -m digitlab insight --models-dir {tmp_path}'"):
        load_insight(tmp_path)


def test_a_missing_or_damaged_artefact_says_how_to_make_it(tmp_path):
    with pytest.raises(InsightUnavailableError, match="python -m digitlab insight"):
        load_insight(tmp_path)
    (tmp_path / INSIGHT_NAME).write_bytes(b"not a zip file")
    with pytest.raises(InsightUnavailableError, match="damaged"):
        load_insight(tmp_path)


def test_compute_insight_needs_a_keras_model(small_train):
    with pytest.raises(ValueError, match="Keras"):
        compute_insight(object(), *small_train, small_train[0][:5])


def test_the_insight_command_passes_its_options_and_reports_the_timings(monkeypatch, capsys):
    received = {}

    def fake_build(models_dir, data_dir, **options):
        received.update(options, models_dir=models_dir, data_dir=data_dir)
        return {"source_model": "cnn", "seconds": {"embedding": 61.0, "map": 90.4}}

    monkeypatch.setattr("digitlab.insight.artefact.build_insight", fake_build)

    status = cli.main(["insight", "--method", "pca", "--neighbours", "4", "--models-dir", "/m", "--data-dir", "/d"])

    assert status == 0
    assert received["method"] == "pca" and received["per_class"] == 4 and received["models_dir"] == "/m"
    assert "embedding 61 s, map 90 s" in capsys.readouterr().out
