"""The run registry on real SQLite files: requests, life cycle, progress, cancellation and learning curves."""

import datetime
import os
import sqlite3
import subprocess
import sys

import pytest

from digitlab import settings
from digitlab.errors import DigitlabError
from digitlab.lab import runs


@pytest.fixture
def registry(tmp_path):
    connection = runs.open_registry(tmp_path / "lab.sqlite3")
    yield connection
    connection.close()


def finished_process_id() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"family": "ensemble"}, "Unknown model family"),
        ({"family": "mlp", "train_size": 50}, "between 100 and 60,000"),
        ({"family": "mlp", "train_size": 70_000}, "between 100 and 60,000"),
        ({"family": "svm", "train_size": 30_000}, "at most 20,000"),
        ({"family": "cnn", "epochs": 0}, "at least 1"),
        ({"family": "svm", "C": -1.0}, "must be positive"),
    ],
)
def test_a_request_with_bad_parameters_is_refused_with_a_sentence(options, message):
    with pytest.raises(ValueError, match=message):
        runs.TrainingRequest(**options)


def test_each_family_gets_only_its_own_options():
    keras = runs.TrainingRequest("mlp", epochs=3, augment=False)
    svm = runs.TrainingRequest("svm", C=5.0, gamma=0.01, augment=False)
    assert keras.model_options() == {"epochs": 3, "augment": False}
    assert svm.model_options() == {"C": 5.0, "gamma": 0.01, "shifted_copies": False}
    assert "C" not in keras.describe() and "epochs" not in svm.describe()


def test_a_run_goes_from_queued_to_succeeded_and_another_connection_follows_it(tmp_path):
    path = tmp_path / "lab.sqlite3"
    writer, reader = runs.open_registry(path), runs.open_registry(path)
    run_id = runs.create_run(writer, runs.TrainingRequest("mlp", train_size=500, epochs=2))
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert runs.get_run(reader, run_id).status == "queued"

    runs.mark_running(writer, run_id, 4242, tmp_path / "run")
    runs.record_progress(writer, run_id, 1, 2, {"loss": 1.5, "accuracy": 0.6, "val_loss": 1.2, "val_accuracy": 0.7})
    seen = runs.get_run(reader, run_id)
    assert (seen.status, seen.progress_done, seen.progress_total, seen.stage) == ("running", 1, 2, "epoch 1 of 2")
    assert seen.fraction_done == pytest.approx(0.5)
    assert runs.epoch_history(reader, run_id) == {
        "loss": [1.5],
        "accuracy": [0.6],
        "val_loss": [1.2],
        "val_accuracy": [0.7],
    }

    outcome = {
        "data": {"mnist_images": 500, "train_images": 500},
        "metrics": {"test": {"accuracy": 0.8, "errors": 2000}},
        "training_seconds": 3.5,
        "total_seconds": 9.0,
        "artifact": str(tmp_path / "run" / "mlp.keras"),
        "sha256": "ab" * 32,
        "size_bytes": 1234,
    }
    runs.mark_succeeded(writer, run_id, outcome)
    finished = runs.get_run(reader, run_id)
    assert finished.finished and finished.fraction_done == 1.0
    assert (finished.sha256, finished.artifact, finished.training_seconds) == ("ab" * 32, outcome["artifact"], 3.5)
    assert runs.summary_row(finished)["accuracy"] == 0.8


def test_a_run_cannot_be_started_twice(registry, tmp_path):
    run_id = runs.create_run(registry, runs.TrainingRequest("cnn", train_size=200, epochs=1))
    runs.mark_running(registry, run_id, 1, tmp_path)
    with pytest.raises(DigitlabError, match="is running, so it cannot be started again"):
        runs.mark_running(registry, run_id, 2, tmp_path)


def test_cancelling_sets_the_flag_only_while_the_run_is_unfinished(registry):
    run_id = runs.create_run(registry, runs.TrainingRequest("mlp", train_size=200, epochs=1))
    assert not runs.cancel_requested(registry, run_id)
    assert runs.request_cancel(registry, run_id)
    assert runs.cancel_requested(registry, run_id)
    runs.mark_finished_without_model(registry, run_id, "cancelled", "Cancelled on request.")
    assert not runs.request_cancel(registry, run_id)
    assert runs.get_run(registry, run_id).status == "cancelled"


def test_a_run_whose_worker_died_is_marked_failed(registry, tmp_path):
    lost = runs.create_run(registry, runs.TrainingRequest("mlp", train_size=200, epochs=1))
    alive = runs.create_run(registry, runs.TrainingRequest("mlp", train_size=200, epochs=1))
    never_started = runs.create_run(registry, runs.TrainingRequest("mlp", train_size=200, epochs=1))
    in_the_foreground = runs.create_run(registry, runs.TrainingRequest("mlp", train_size=200, epochs=1))
    runs.mark_running(registry, lost, finished_process_id(), tmp_path)
    runs.mark_running(registry, alive, os.getpid(), tmp_path)
    runs.record_worker(registry, never_started, finished_process_id())

    assert sorted(runs.mark_lost_runs(registry)) == [lost, never_started]
    assert runs.get_run(registry, lost).status == "failed"
    assert runs.get_run(registry, lost).error == runs.LOST_WORKER_MESSAGE
    assert runs.get_run(registry, never_started).status == "failed"
    assert runs.get_run(registry, alive).status == "running"
    assert runs.get_run(registry, in_the_foreground).status == "queued"


def test_a_queued_run_never_given_a_worker_is_marked_failed_after_the_grace_period(registry):
    stale = runs.create_run(registry, runs.TrainingRequest("mlp", train_size=200, epochs=1))
    starting = runs.create_run(registry, runs.TrainingRequest("mlp", train_size=200, epochs=1))
    # The launch that created ``stale`` was interrupted two minutes ago, before its worker was started.
    created = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=runs.UNSTARTED_GRACE_SECONDS + 60)
    registry.execute("UPDATE training_runs SET created_at = ? WHERE id = ?", (created.isoformat(), stale))

    assert runs.mark_lost_runs(registry) == [stale]
    assert runs.get_run(registry, stale).status == "failed"
    assert runs.get_run(registry, stale).error == runs.UNSTARTED_MESSAGE
    assert runs.get_run(registry, starting).status == "queued"


@pytest.mark.skipif(runs.process_start(os.getpid()) is None, reason="needs Linux's /proc start times")
def test_a_running_run_whose_worker_id_now_belongs_to_a_newer_process_is_marked_failed(registry, tmp_path):
    reused = runs.create_run(registry, runs.TrainingRequest("mlp", train_size=200, epochs=1))
    current = runs.create_run(registry, runs.TrainingRequest("mlp", train_size=200, epochs=1))
    runs.mark_running(registry, reused, os.getpid(), tmp_path)
    runs.mark_running(registry, current, os.getpid(), tmp_path)
    # This test's process id was recorded for a run that started long before the process did.
    registry.execute("UPDATE training_runs SET started_at = '2000-01-01T00:00:00+00:00' WHERE id = ?", (reused,))

    assert runs.mark_lost_runs(registry) == [reused]
    assert runs.get_run(registry, reused).error == runs.LOST_WORKER_MESSAGE
    assert runs.get_run(registry, current).status == "running"


def test_a_missing_run_is_reported_with_a_sentence(registry):
    with pytest.raises(runs.RunNotFoundError, match="no training run #99"):
        runs.get_run(registry, 99)


def test_a_finished_run_needs_a_final_status(registry):
    run_id = runs.create_run(registry, runs.TrainingRequest("mlp", train_size=200, epochs=1))
    with pytest.raises(ValueError, match="failed or cancelled"):
        runs.mark_finished_without_model(registry, run_id, "succeeded", None)


def test_learning_curves_group_succeeded_runs_by_family_and_settings(registry, tmp_path):
    def finished(family, size, accuracy, seconds, **options):
        run_id = runs.create_run(registry, runs.TrainingRequest(family, train_size=size, **options))
        runs.mark_running(registry, run_id, 1, tmp_path)
        runs.mark_succeeded(
            registry,
            run_id,
            {
                "data": {"mnist_images": size},
                "metrics": {"test": {"accuracy": accuracy, "errors": 0}},
                "training_seconds": seconds,
                "total_seconds": seconds,
                "artifact": "a",
                "sha256": "b",
                "size_bytes": 1,
            },
        )

    finished("mlp", 2000, 0.9, 10.0, epochs=2)
    finished("mlp", 1000, 0.85, 5.0, epochs=2)
    finished("svm", 1000, 0.93, 2.0)
    failed = runs.create_run(registry, runs.TrainingRequest("mlp", train_size=500, epochs=2))
    runs.mark_finished_without_model(registry, failed, "failed", "broken")

    rows = runs.learning_curve_rows(runs.list_runs(registry))
    assert [(row["family"], row["train_size"], row["accuracy"]) for row in rows] == [
        ("mlp", 1000, 0.85),
        ("mlp", 2000, 0.9),
        ("svm", 1000, 0.93),
    ]
    assert rows[0]["curve"] == "MLP (epochs 2, augment True)"
    assert [run.id for run in runs.list_runs(registry, ("failed",))] == [failed]


def test_the_command_line_lists_runs_and_refuses_an_unknown_one_with_a_sentence(tmp_path, monkeypatch, capsys):
    from digitlab.cli import main

    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(tmp_path / "lab.sqlite3"))
    connection = runs.open_registry()
    run_id = runs.create_run(connection, runs.TrainingRequest("svm", train_size=1000))
    runs.mark_finished_without_model(connection, run_id, "failed", "broken")
    connection.close()

    assert main(["runs", "list"]) == 0
    listed = capsys.readouterr()
    assert f"#{run_id}" in listed.out and "failed" in listed.out and "1,000 images" in listed.out
    assert "The shipped models are in use." in listed.err
    assert main(["runs", "promote", "99"]) == 2
    assert "no training run #99" in capsys.readouterr().err
    assert main(["runs", "rollback"]) == 2
    assert "Nothing to roll back" in capsys.readouterr().err
    assert main(["runs", "train", "--model", "svm", "--train-size", "30000"]) == 2
    assert capsys.readouterr().err.startswith("error: The SVM trains on at most 20,000 images")


def test_the_command_line_reports_a_locked_registry_with_a_sentence(tmp_path, monkeypatch, capsys):
    import sqlite3

    from digitlab.cli import main

    path = tmp_path / "lab.sqlite3"
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(path))
    connection = runs.open_registry()
    run_id = runs.create_run(connection, runs.TrainingRequest("svm", train_size=1000))
    # A worker process id that no process has: listing will want to mark the run as failed, which is a write.
    runs.record_worker(connection, run_id, 2**22 + 12345)
    connection.close()
    monkeypatch.setattr("digitlab.lab.database.BUSY_TIMEOUT_SECONDS", 0.1)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert main(["runs", "list"]) == 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    error = capsys.readouterr().err
    assert error.startswith(f"error: the database {path} could not be used") and "locked" in error


def test_the_run_commands_close_the_connections_they_open(tmp_path, monkeypatch, capsys):
    from digitlab.cli import main
    from digitlab.lab import worker

    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(tmp_path / "lab.sqlite3"))
    opened = []
    open_registry = runs.open_registry

    def recorded_registry(*arguments):
        opened.append(open_registry(*arguments))
        return opened[-1]

    monkeypatch.setattr(runs, "open_registry", recorded_registry)
    monkeypatch.setattr(worker, "run_worker", lambda run_id, **options: runs.Run(run_id, "svm", "failed", {}, ""))

    assert main(["runs", "list"]) == 0
    assert main(["runs", "train", "--model", "svm", "--train-size", "1000"]) == 1
    assert len(opened) == 2
    for connection in opened:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            connection.execute("SELECT 1")
