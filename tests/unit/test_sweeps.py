"""Sweeps: requests and their runs, recording them in the registry's line, reading them back, the command line."""

import os
import re
from pathlib import Path

import pytest

from digitlab import settings
from digitlab.lab import runs, sweeps, worker
from tests.support import stop_unfinished_workers


@pytest.fixture
def registry(tmp_path):
    with runs.RunRegistry(tmp_path / "lab.sqlite3") as opened:
        yield opened


def finish(registry: runs.RunRegistry, run_id: int, accuracy: float | None, seconds: float = 3.0) -> None:
    """End a run of the line as a worker would: succeeded with ``accuracy``, or failed when it is None."""
    assert registry.claim_next_run(1) == run_id
    registry.mark_running(run_id, os.getpid(), Path("unused"))
    if accuracy is None:
        registry.mark_finished_without_model(run_id, "failed", "The worker ran out of memory.")
        return
    registry.mark_succeeded(
        run_id,
        {
            "data": {},
            "metrics": {"test": {"accuracy": accuracy, "errors": round((1 - accuracy) * 10_000)}},
            "training_seconds": seconds,
            "total_seconds": seconds,
            "artifact": "unused",
            "sha256": "0" * 64,
            "size_bytes": 1,
        },
    )


def svm_grid() -> sweeps.SweepRequest:
    base = runs.TrainingRequest("svm", train_size=1_000, augment=False)
    return sweeps.SweepRequest(base, {"C": (10, 1), "gamma": (0.01, 0.05, 0.02)})


def test_every_combination_is_one_run_in_increasing_order_with_the_other_settings_of_the_base():
    request = svm_grid()

    assert request.run_count == 6
    assert request.ordered_axes() == {"C": [1.0, 10.0], "gamma": [0.01, 0.02, 0.05]}
    combinations = [(each.C, each.gamma) for each in request.requests()]
    assert combinations == [(1, 0.01), (1, 0.02), (1, 0.05), (10, 0.01), (10, 0.02), (10, 0.05)]
    assert {(each.family, each.train_size, each.augment) for each in request.requests()} == {("svm", 1_000, False)}


def test_counts_are_swept_as_whole_numbers_and_repeated_values_count_once():
    base = runs.TrainingRequest("mlp", recipe="quick")
    request = sweeps.SweepRequest(base, {"train_size": (2_000.0, 500, 2_000), "epochs": (2, 1)})

    assert request.run_count == 4
    assert request.ordered_axes() == {"train_size": [500, 2_000], "epochs": [1, 2]}
    assert all(isinstance(value, int) for values in request.ordered_axes().values() for value in values)
    assert [(each.train_size, each.epochs, each.recipe) for each in request.requests()] == [
        (500, 1, "quick"),
        (500, 2, "quick"),
        (2_000, 1, "quick"),
        (2_000, 2, "quick"),
    ]


@pytest.mark.parametrize(
    ("family", "axes", "message"),
    [
        ("mlp", {}, "Choose one or two settings to sweep."),
        ("svm", {"train_size": (500, 1_000), "C": (1, 10), "gamma": (0.01, 0.02)}, "not 3"),
        ("mlp", {"C": (1, 10)}, "cannot vary 'C'"),
        ("svm", {"epochs": (1, 2)}, "cannot vary 'epochs'"),
        ("cnn", {"epochs": (3, 3)}, "at least two different values of epochs"),
        ("cnn", {"epochs": (2, 2.5)}, "must be whole numbers, not (2, 2.5)"),
        ("svm", {"C": (1, float("nan"))}, "must be numbers, not (1, nan)"),
        ("svm", {"C": tuple(range(1, 6)), "gamma": (0.01, 0.02, 0.03, 0.04, 0.05)}, "would queue 25 runs"),
        ("svm", {"train_size": (1_000, 30_000)}, "The SVM trains on at most 20,000 images"),
        ("mlp", {"train_size": (50, 1_000)}, "train_size must be between 100"),
        ("svm", {"C": (0, 1)}, "C and gamma must be positive"),
    ],
)
def test_a_sweep_that_cannot_run_is_refused_with_a_sentence_before_anything_is_queued(family, axes, message):
    with pytest.raises(runs.InvalidRequestError, match=re.escape(message)):
        sweeps.SweepRequest(runs.TrainingRequest(family), axes)


def test_a_sweep_is_recorded_and_its_runs_wait_in_line_in_order(registry):
    earlier = registry.enqueue_run(runs.TrainingRequest("mlp", train_size=500))
    request = svm_grid()

    sweep_id = registry.enqueue_sweep("svm", request.ordered_axes(), request.requests())

    (recorded,) = registry.list_sweeps()
    assert (recorded.id, recorded.family) == (sweep_id, "svm")
    assert recorded.axes == {"C": [1, 10], "gamma": [0.01, 0.02, 0.05]}
    assert registry.get_sweep(sweep_id) == recorded
    swept = registry.sweep_runs(sweep_id)
    assert [(run.parameters["C"], run.parameters["gamma"]) for run in swept] == [
        (each.C, each.gamma) for each in request.requests()
    ]
    assert all(run.background and run.sweep_id == sweep_id and run.status == "queued" for run in swept)
    # The sweep's runs join the line behind the run that was already waiting, and are taken first come first served.
    assert [run.id for run in registry.waiting_runs()] == [earlier, *(run.id for run in swept)]
    assert registry.get_run(earlier).sweep_id is None
    with pytest.raises(runs.RunNotFoundError, match="no sweep #99"):
        registry.get_sweep(99)


def test_a_sweeps_result_places_each_run_on_its_axes_finished_or_not(registry):
    request = svm_grid()
    sweep_id = registry.enqueue_sweep("svm", request.ordered_axes(), request.requests())
    run_ids = [run.id for run in registry.sweep_runs(sweep_id)]
    finish(registry, run_ids[0], 0.95)
    finish(registry, run_ids[1], 0.97, seconds=4.5)
    finish(registry, run_ids[2], None)

    result = sweeps.sweep_result(registry.get_sweep(sweep_id), registry.sweep_runs(sweep_id))

    assert result.settings == ["C", "gamma"]
    assert result.finished == 3 and len(result.succeeded) == 2
    assert result.title() == "Sweep #1 · SVM · C x gamma · 3 of 6 runs ended"
    assert result.best().run_id == run_ids[1] and result.best().training_seconds == 4.5
    grid = result.grid()
    # Rows follow gamma (the second setting), columns follow C.
    assert [[point.run_id for point in row] for row in grid] == [
        [run_ids[0], run_ids[3]],
        [run_ids[1], run_ids[4]],
        [run_ids[2], run_ids[5]],
    ]
    assert [[point.accuracy for point in row] for row in grid] == [[0.95, None], [0.97, None], [None, None]]
    assert [row["status"] for row in sweeps.result_table(result)] == ["succeeded"] * 2 + ["failed"] + ["queued"] * 3
    assert sweeps.result_table(result)[1] == {
        "run": run_ids[1],
        "C": 1.0,
        "gamma": 0.02,
        "status": "succeeded",
        "accuracy": 0.97,
        "training_seconds": 4.5,
    }


def test_a_one_setting_sweep_has_no_grid(registry):
    request = sweeps.SweepRequest(runs.TrainingRequest("cnn"), {"train_size": (500, 1_000)})
    sweep_id = registry.enqueue_sweep("cnn", request.ordered_axes(), request.requests())
    result = sweeps.sweep_result(registry.get_sweep(sweep_id), registry.sweep_runs(sweep_id))

    assert result.best() is None
    with pytest.raises(ValueError, match="two settings"):
        result.grid()


def test_a_registry_from_before_sweeps_is_upgraded_and_its_runs_belong_to_no_sweep(tmp_path):
    from digitlab.lab.database import Schema, connect

    path = tmp_path / "lab.sqlite3"
    older = connect(path, [Schema("runs", runs.SCHEMA.migrations[:2])])
    older.execute(
        "INSERT INTO training_runs (family, status, parameters, created_at, background) "
        "VALUES ('mlp', 'queued', '{\"train_size\": 200}', '2026-01-01T00:00:00+00:00', 1)"
    )
    older.close()

    with runs.RunRegistry(path) as registry:
        (run,) = registry.list_runs()
        assert run.sweep_id is None and registry.list_sweeps() == []
        assert [waiting.id for waiting in registry.waiting_runs()] == [run.id]


def test_the_command_line_queues_a_sweep_and_reports_it_as_a_grid(tmp_path, monkeypatch, capsys):
    from digitlab.cli import main

    database = tmp_path / "lab.sqlite3"
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(database))
    # No worker starts: the runs stay in line, and this test ends them as workers would.
    monkeypatch.setattr(worker, "start_queued_runs", lambda *arguments, **options: [])

    command = ["runs", "sweep", "--model", "svm", "--train-size", "1000", "--C", "1", "10"]
    assert main([*command, "--gamma", "0.01", "0.02", "--no-augment", "--no-wait"]) == 0
    err = capsys.readouterr().err
    assert "Sweep #1: 4 SVM runs in line (other settings: 1,000 images, not augmented)" in err
    assert "runs sweeps 1" in err
    with runs.RunRegistry(database) as registry:
        swept = registry.sweep_runs(1)
        assert [(run.train_size, run.parameters["augment"]) for run in swept] == [(1_000, False)] * 4
        for run, accuracy in zip(swept, (0.9, 0.91, 0.92, 0.93), strict=True):
            finish(registry, run.id, accuracy)

    assert main(["runs", "sweeps"]) == 0
    assert capsys.readouterr().out.strip() == "Sweep #1 · SVM · C x gamma · 4 of 4 runs ended"
    assert main(["runs", "sweeps", "1"]) == 0
    report = capsys.readouterr().out
    assert "| gamma \\ C | 1 | 10 |" in report
    assert "| 0.01 | 90.00% | 92.00% |" in report and "| 0.02 | 91.00% | 93.00% |" in report
    assert "Highest test accuracy: run #4, 93.00%." in report
    assert main(["runs", "sweeps", "7"]) == 2
    assert "no sweep #7" in capsys.readouterr().err
    assert main(["runs", "sweep", "--model", "mlp", "--C", "1", "10"]) == 2
    assert "An MLP run has no --C; its settings to sweep are --train-size, --epochs." in capsys.readouterr().err
    assert main(["runs", "sweep", "--model", "svm", "--epochs", "5", "--C", "1", "10"]) == 2
    assert "An SVM run has no --epochs" in capsys.readouterr().err


def test_cancelling_a_sweep_ends_its_runs_in_line_and_asks_its_training_run_to_stop(tmp_path, monkeypatch, capsys):
    from digitlab.cli import main

    database = tmp_path / "lab.sqlite3"
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(database))
    with runs.RunRegistry(database) as registry:
        other = registry.enqueue_run(runs.TrainingRequest("mlp", train_size=500))
        request = svm_grid()
        sweep_id = registry.enqueue_sweep("svm", request.ordered_axes(), request.requests())
        assert registry.request_cancel(other)
        done, training, *waiting = registry.sweep_runs(sweep_id)
        finish(registry, done.id, 0.9)
        assert registry.claim_next_run(1) == training.id
        registry.mark_running(training.id, os.getpid(), Path("unused"))

    assert main(["runs", "cancel", "--sweep", str(sweep_id)]) == 0
    assert f"Sweep #{sweep_id}: {1 + len(waiting)} unfinished runs were cancelled" in capsys.readouterr().out
    with runs.RunRegistry(database) as registry:
        assert registry.get_run(done.id).status == "succeeded"
        assert registry.get_run(training.id).status == "running" and registry.get_run(training.id).cancel_requested
        assert all(registry.get_run(run.id).status == "cancelled" for run in waiting)
        assert registry.waiting_runs() == []
    # Asked again, nothing is left to cancel: the training run was already asked to stop.
    assert main(["runs", "cancel", "--sweep", str(sweep_id)]) == 1
    assert "nothing to cancel" in capsys.readouterr().err
    assert main(["runs", "cancel", "--sweep", "99"]) == 2
    assert "no sweep #99" in capsys.readouterr().err
    assert main(["runs", "cancel"]) == 2
    assert "Name one run to cancel, or one sweep with --sweep; you gave neither." in capsys.readouterr().err
    assert main(["runs", "cancel", "3", "--sweep", str(sweep_id)]) == 2
    assert "you gave both" in capsys.readouterr().err


def test_a_sweep_from_the_command_line_trains_every_run_through_the_line(tmp_path, monkeypatch, mnist_dir, capsys):
    from digitlab.cli import main

    database = tmp_path / "lab.sqlite3"
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(database))
    monkeypatch.setenv(settings.MAX_TRAINING_RUNS_VARIABLE, "1")
    try:
        status = main(["runs", "sweep", "--model", "mlp", "--train-size", "100", "200", "--epochs", "1"])
    finally:
        stop_unfinished_workers(database)

    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "[1/2] run #1 (training images 100)" in captured.err and "[2/2] run #2" in captured.err
    assert "| training images | test accuracy | training (s) | run |" in captured.out
    with runs.RunRegistry(database) as registry:
        swept = registry.sweep_runs(1)
    assert [(run.status, run.train_size, run.parameters["epochs"]) for run in swept] == [
        ("succeeded", 100, 1),
        ("succeeded", 200, 1),
    ]
    assert all(Path(run.artifact).is_file() for run in swept)
