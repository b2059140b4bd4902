"""Promotion: a run's model becomes the one in use atomically, reversibly, and never in the base folder."""

import hashlib
import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from digitlab import settings
from digitlab.checksums import sha256_file
from digitlab.lab import promotion, runs
from digitlab.manifest import ModelEntry
from digitlab.persistence import MANIFEST_NAME, read_manifest, write_manifest


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir):
    """A base folder (tiny SVM and MLP, plus an ensemble of them) and a run folder with another tiny MLP."""
    from digitlab.training import train_and_record

    base = tmp_path_factory.mktemp("base")
    run = tmp_path_factory.mktemp("run")
    train_and_record("svm", train_size=300, shifted_copies=False, models_dir=base, data_dir=mnist_dir)
    train_and_record("mlp", epochs=1, train_size=300, models_dir=base, data_dir=mnist_dir)
    train_and_record("mlp", epochs=1, train_size=300, seed=1, models_dir=run, data_dir=mnist_dir)
    # An ensemble entry as training writes it; promotion must leave it out once one of its members changes.
    (base / "insight.npz").write_bytes(b"checked against the manifest when read")
    (base / "mlp.tflite").write_bytes(b"an export of the base's MLP")
    (base / "mlp.onnx").write_bytes(b"another export of the base's MLP")
    (base / "ensemble.json").write_text('{"members": {}}\n')
    manifest = read_manifest(base)
    manifest.models["ensemble"] = ModelEntry(artifact="ensemble.json", sha256=sha256_file(base / "ensemble.json"))
    write_manifest(manifest, base)
    return base, run


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.delenv(settings.MODELS_DIR_VARIABLE, raising=False)
    return tmp_path / "active"


def test_promoting_switches_the_models_in_use_and_leaves_the_base_untouched(trained, root):
    base, run = trained
    before = snapshot(base)
    assert promotion.serving_models_dir(root) == settings.models_dir()

    pointer = promotion.promote(run, "mlp", run_id=7, root=root, base=base)

    folder = promotion.active_folder(root)
    assert folder == root / "generations" / pointer["generation"]
    assert promotion.serving_models_dir(root) == folder
    assert (folder / "mlp.keras").read_bytes() == (run / "mlp.keras").read_bytes()
    assert (folder / "svm.skops").read_bytes() == (base / "svm.skops").read_bytes()
    # Files that check themselves against the manifest come along; an export of the replaced model does not.
    assert (folder / "insight.npz").exists()
    assert not (folder / "mlp.tflite").exists() and not (folder / "mlp.onnx").exists()
    manifest = read_manifest(folder)
    assert sorted(manifest.models) == ["mlp", "svm"]
    assert manifest.models["mlp"].run_id == 7
    assert "ensemble" in pointer["left_out"]
    assert snapshot(base) == before
    assert not [path for path in (root / "generations").iterdir() if path.name.startswith(".")]
    assert "from run #7 is in use" in promotion.describe_pointer(pointer)


def test_a_plan_says_what_promoting_would_change_and_changes_nothing(trained, root):
    base, run = trained
    before = snapshot(base)

    plan = promotion.plan_promotion(run, "mlp", run_id=7, root=root, base=base)

    assert (plan.family, plan.run_id) == ("mlp", 7)
    assert plan.current_accuracy == read_manifest(base).models["mlp"].accuracy
    assert plan.new_accuracy == read_manifest(run).models["mlp"].accuracy
    assert plan.current_accuracy is not None and plan.new_accuracy is not None
    assert plan.left_out == {"ensemble": "its weights were fitted to the MLP that was replaced"}
    assert not root.exists() and snapshot(base) == before

    pointer = promotion.promote(run, "mlp", run_id=7, root=root, base=base)

    assert pointer["left_out"] == plan.left_out
    assert promotion.describe_pointer(pointer).endswith(
        "The ensemble is left out: its weights were fitted to the MLP that was replaced; rolling back brings it back."
    )
    # Once the ensemble is out, promoting another member leaves nothing more out.
    assert promotion.plan_promotion(base, "svm", root=root).left_out == {}


def test_a_plan_for_a_family_not_in_use_has_no_accuracy_to_compare(trained, root, tmp_path):
    base, run = trained
    without_mlp = tmp_path / "without-mlp"
    shutil.copytree(base, without_mlp)
    manifest = read_manifest(without_mlp)
    write_manifest(replace(manifest, models={"svm": manifest.models["svm"]}), without_mlp)

    plan = promotion.plan_promotion(run, "mlp", root=root, base=without_mlp)

    assert plan.current_accuracy is None and plan.new_accuracy is not None
    assert plan.left_out == {}


def test_rollback_returns_to_each_earlier_generation_and_then_to_the_shipped_models(trained, root):
    base, run = trained
    first = promotion.promote(run, "mlp", root=root, base=base)
    second = promotion.promote(base, "svm", root=root)
    assert second["history"][0]["generation"] == first["generation"]
    # The second generation was built on the first, so it keeps the promoted MLP.
    assert (promotion.active_folder(root) / "mlp.keras").read_bytes() == (run / "mlp.keras").read_bytes()

    assert promotion.rollback(root)["generation"] == first["generation"]
    assert promotion.active_folder(root) == root / "generations" / first["generation"]
    assert promotion.rollback(root)["generation"] is None
    assert promotion.active_folder(root) is None
    with pytest.raises(promotion.PromotionError, match="Nothing to roll back"):
        promotion.rollback(root)


def test_a_damaged_run_artefact_is_refused_and_the_models_in_use_stay_byte_identical(trained, root, tmp_path):
    base, run = trained
    promotion.promote(run, "mlp", root=root, base=base)
    before = snapshot(root)
    damaged = tmp_path / "damaged-run"
    shutil.copytree(run, damaged)
    artefact = damaged / "mlp.keras"
    artefact.write_bytes(artefact.read_bytes()[:-100] + b"\0" * 100)
    manifest = read_manifest(damaged)
    manifest.models["mlp"] = replace(manifest.models["mlp"], sha256=sha256_file(artefact))
    write_manifest(manifest, damaged)

    with pytest.raises(promotion.PromotionError, match="does not load"):
        promotion.promote(damaged, "mlp", root=root)

    assert snapshot(root) == before


def test_a_base_with_a_missing_artefact_is_refused_in_one_sentence(trained, root, tmp_path):
    base, run = trained
    incomplete = tmp_path / "incomplete-base"
    shutil.copytree(base, incomplete)
    (incomplete / "svm.skops").unlink()

    with pytest.raises(promotion.PromotionError, match="could not be built .*svm.skops.*nothing was changed"):
        promotion.promote(run, "mlp", root=root, base=incomplete)

    assert promotion.active_folder(root) is None
    assert not list((root / "generations").iterdir())


def test_promotions_at_the_same_time_each_keep_the_other_in_the_history(trained, root):
    base, run = trained
    promotion.promote(run, "mlp", root=root, base=base)
    pointers, failures = [], []

    def promote(family: str) -> None:
        try:
            pointers.append(promotion.promote(base, family, root=root))
        except BaseException as error:  # noqa: BLE001 - the main thread reports any failure of a promoting thread.
            failures.append(error)

    threads = [threading.Thread(target=promote, args=(family,)) for family in ("svm", "mlp")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not failures, failures
    first, last = sorted(pointers, key=lambda pointer: len(pointer["history"]))
    assert promotion.read_pointer(root)["generation"] == last["generation"]
    assert last["history"][0]["generation"] == first["generation"]
    assert [promotion.rollback(root)["generation"] for _ in range(3)][-1] is None


def test_a_folder_without_the_family_cannot_be_promoted(trained, root, tmp_path):
    with pytest.raises(promotion.PromotionError, match="holds no trained cnn model"):
        promotion.promote(trained[1], "cnn", root=root, base=trained[0])
    assert not (root / promotion.POINTER_NAME).exists()


def test_the_models_folder_variable_wins_over_a_promotion(trained, root, monkeypatch, tmp_path):
    promotion.promote(trained[1], "mlp", root=root, base=trained[0])
    monkeypatch.setenv(settings.MODELS_DIR_VARIABLE, str(tmp_path / "mine"))
    assert promotion.serving_models_dir(root) == tmp_path / "mine"


def test_a_damaged_pointer_falls_back_to_the_shipped_models_and_says_so(root):
    root.mkdir(parents=True)
    (root / promotion.POINTER_NAME).write_text("{not json")
    assert promotion.serving_models_dir(root) == settings.models_dir()
    with pytest.raises(promotion.PromotionError, match="cannot be read"):
        promotion.read_pointer(root)


def test_only_a_succeeded_run_can_be_promoted(tmp_path):
    database = tmp_path / "lab.sqlite3"
    with runs.RunRegistry(database) as registry:
        run_id = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    with pytest.raises(promotion.PromotionError, match="is queued; only a run that succeeded"):
        promotion.promote_run(run_id, database, root=tmp_path / "active")
    with pytest.raises(promotion.PromotionError, match="is queued; only a run that succeeded"):
        promotion.plan_run_promotion(run_id, database, root=tmp_path / "active")


def test_a_promoted_run_is_found_through_the_registry(trained, tmp_path, monkeypatch):
    monkeypatch.delenv(settings.MODELS_DIR_VARIABLE, raising=False)
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(tmp_path / "lab.sqlite3"))
    base, run = trained
    monkeypatch.setattr(settings, "DEFAULT_MODELS_DIR", base)
    with runs.RunRegistry() as registry:
        run_id = registry.create_run(runs.TrainingRequest("mlp", train_size=300, epochs=1, seed=1))
        registry.mark_running(run_id, 1, run)
        registry.mark_succeeded(
            run_id,
            {
                "data": {},
                "metrics": {"test": {"accuracy": 0.5, "errors": 5000}},
                "training_seconds": 1.0,
                "total_seconds": 1.0,
                "artifact": str(run / "mlp.keras"),
                "sha256": sha256_file(run / "mlp.keras"),
                "size_bytes": 1,
            },
        )

    pointer = promotion.promote_run(run_id)

    assert settings.active_dir() == tmp_path / "active"
    assert json.loads((tmp_path / "active" / promotion.POINTER_NAME).read_text())["run_id"] == run_id
    assert promotion.serving_models_dir() == tmp_path / "active" / "generations" / pointer["generation"]
    assert (promotion.serving_models_dir() / MANIFEST_NAME).exists()


def test_predict_on_the_command_line_reads_the_promoted_model(trained, tmp_path, monkeypatch, capsys):
    from PIL import Image, ImageDraw

    from digitlab.cli import main

    monkeypatch.delenv(settings.MODELS_DIR_VARIABLE, raising=False)
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(tmp_path / "lab.sqlite3"))
    base, run = trained
    image = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(image).line([(50, 15), (50, 85)], fill=0, width=9)
    image.save(tmp_path / "one.png")
    promotion.promote(run, "mlp", base=base)

    assert main(["predict", str(tmp_path / "one.png"), "--json"]) == 0
    promoted = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [reading["model"] for reading in promoted] == ["svm", "mlp"]
    assert main(["predict", str(tmp_path / "one.png"), "--json", "--model", "mlp", "--models-dir", str(base)]) == 0
    from_base = json.loads(capsys.readouterr().out)
    assert from_base["probabilities"] != promoted[1]["probabilities"]
