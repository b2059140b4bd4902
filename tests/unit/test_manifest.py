"""The manifest's types: they read every manifest digitlab writes and write it back unchanged, unknown keys included."""

import json
from dataclasses import replace

import pytest

from digitlab import persistence, settings
from digitlab.errors import ModelUnavailableError
from digitlab.manifest import Manifest, ManifestError, Metrics, ModelEntry, Timing

SHIPPED_MANIFEST = settings.DEFAULT_MODELS_DIR / persistence.MANIFEST_NAME


def written(recorded) -> str:
    """JSON text as ``write_manifest`` lays it out, so that equal text means equal keys in equal order."""
    return json.dumps(recorded, indent=1)


@pytest.fixture
def shipped() -> dict:
    return json.loads(SHIPPED_MANIFEST.read_text())


def test_the_shipped_manifest_survives_a_round_trip_unchanged(shipped):
    manifest = Manifest.from_json(shipped)

    assert manifest.to_json() == shipped
    assert written(manifest.to_json()) == written(shipped)
    assert list(manifest.models) == list(shipped["models"])
    cnn = manifest.models["cnn"]
    assert cnn.metrics.accuracy == shipped["models"]["cnn"]["metrics"]["accuracy"]
    assert cnn.timing.single_image_ms == shipped["models"]["cnn"]["timing"]["single_image_ms"]
    # Older ensembles recorded their members among their hyperparameters; newer ones take them from the registry.
    recorded_members = shipped["models"]["ensemble"]["hyperparameters"].get("members", [])
    assert manifest.models["ensemble"].members == tuple(recorded_members)


def test_rewriting_the_shipped_manifest_changes_no_byte(tmp_path):
    persistence.write_manifest(persistence.read_manifest(SHIPPED_MANIFEST.parent), tmp_path)

    assert (tmp_path / persistence.MANIFEST_NAME).read_bytes() == SHIPPED_MANIFEST.read_bytes()


def test_unknown_keys_keep_their_values_and_places(shipped):
    # A newer digitlab might record a detector beside the models, and more about each model and its scores.
    recorded = {"schema": shipped["schema"], "detector": {"artifact": "detector.keras"}, "models": shipped["models"]}
    entry = recorded["models"]["svm"]
    recorded["models"]["svm"] = {"calibration": {"temperature": 1.3}, **entry}
    recorded["models"]["svm"]["metrics"] = {**entry["metrics"], "top_2_accuracy": 0.998}
    recorded["models"]["svm"]["timing"] = {"device": "cpu", **entry["timing"]}

    manifest = Manifest.from_json(recorded)

    assert manifest.extra == {"detector": {"artifact": "detector.keras"}}
    assert manifest.models["svm"].extra == {"calibration": {"temperature": 1.3}}
    assert manifest.models["svm"].metrics.extra == {"top_2_accuracy": 0.998}
    assert manifest.models["svm"].timing.extra == {"device": "cpu"}
    assert written(manifest.to_json()) == written(recorded)


def test_a_changed_entry_is_rewritten_in_place_like_a_dictionary_update(shipped):
    manifest = Manifest.from_json(shipped)
    rescored = Metrics(accuracy=0.5, errors=5000)

    manifest.models["mlp"] = replace(manifest.models["mlp"], metrics=rescored, timing=Timing(batch_seconds=1.0))

    expected = json.loads(SHIPPED_MANIFEST.read_text())
    expected["models"]["mlp"].update(metrics={"accuracy": 0.5, "errors": 5000}, timing={"batch_seconds": 1.0})
    assert written(manifest.to_json()) == written(expected)


def test_promotion_names_the_run_last_or_in_the_place_it_had(shipped):
    entry = Manifest.from_json(shipped).models["cnn"]

    promoted = entry.promoted(7).to_json()
    assert list(promoted)[-1] == "run_id" and promoted["run_id"] == 7
    assert entry.promoted(None).to_json()["run_id"] is None
    again = ModelEntry.from_json("cnn", {"run_id": 3, **shipped["models"]["cnn"]}).promoted(8).to_json()
    assert list(again)[0] == "run_id" and again["run_id"] == 8


def test_a_new_entry_is_written_in_training_order_without_what_it_lacks():
    entry = ModelEntry(
        sha256="ab" * 32, artifact="svm.skops", family="svm", seed=0, metrics=Metrics(accuracy=0.99, errors=100)
    )

    assert list(entry.to_json()) == ["family", "artifact", "sha256", "seed", "metrics"]
    assert entry.to_json()["metrics"] == {"accuracy": 0.99, "errors": 100}
    assert Manifest(models={"svm": entry}).to_json() == {"schema": 1, "models": {"svm": entry.to_json()}}


def test_an_older_entry_reads_with_what_it_lacks_as_none_and_keeps_its_nulls():
    recorded = {"artifact": "cnn.keras", "sha256": "ab" * 32, "title": None, "history": None}

    entry = ModelEntry.from_json("cnn", recorded)

    assert entry.metrics is None and entry.accuracy is None and entry.train_size is None
    assert entry.title_or("cnn") == "cnn"
    assert entry.files == ["cnn.keras"]
    assert entry.to_json() == recorded
    assert Manifest.from_json({"models": {}}).to_json() == {"models": {}}


@pytest.mark.parametrize(
    ("recorded", "sentence"),
    [
        ({"schema": 1}, "does not have a 'models' table"),
        ([], "does not have a 'models' table"),
        ({"models": {"cnn": {"sha256": "ab"}}}, "records the cnn model without its 'artifact'"),
        ({"models": {"cnn": {"artifact": "cnn.keras"}}}, "records the cnn model without its 'sha256'"),
        ({"models": {"cnn": {"artifact": "cnn.keras", "sha256": 5}}}, "records 'sha256' of the cnn model as a number"),
        ({"models": {"cnn": ["cnn.keras"]}}, "records the cnn model as a list, not an object"),
        (
            {"models": {"cnn": {"artifact": "cnn.keras", "sha256": "ab", "metrics": 0.99}}},
            "records 'metrics' of the cnn model as a number, not an object",
        ),
        (
            {"models": {"cnn": {"artifact": "cnn.keras", "sha256": "ab", "metrics": {"per_class": [0.9]}}}},
            "records 'per_class' of the metrics of the cnn model as a list, not an object",
        ),
    ],
)
def test_a_manifest_without_what_every_manifest_holds_is_refused_in_a_sentence(recorded, sentence):
    with pytest.raises(ManifestError) as refusal:
        Manifest.from_json(recorded)

    assert str(refusal.value).startswith(sentence)


def test_reading_a_manifest_whose_entry_lacks_a_field_names_the_file_and_the_fix(shipped, tmp_path):
    del shipped["models"]["mlp"]["sha256"]
    (tmp_path / persistence.MANIFEST_NAME).write_text(json.dumps(shipped))

    with pytest.raises(ModelUnavailableError) as refusal:
        persistence.read_manifest(tmp_path)

    path = tmp_path / persistence.MANIFEST_NAME
    assert str(refusal.value) == f"{path} records the mlp model without its 'sha256'; retrain the models."
