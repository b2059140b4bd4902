"""The run registry on real SQLite files: requests, life cycle, progress, cancellation and learning curves."""

import datetime
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from digitlab import settings
from digitlab.errors import DigitlabError
from digitlab.lab import runs
from digitlab.lab.database import DatabaseError
from tests.support import PROJECT_ROOT


@pytest.fixture
def registry(tmp_path):
    with runs.RunRegistry(tmp_path / "lab.sqlite3") as opened:
        yield opened


def finished_process_id() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def rewrite(path, statement: str, parameters: tuple) -> None:
    """Change a run behind the registry's back, as time passing would."""
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(statement, parameters)
    connection.close()


def journal_mode(path) -> str:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()


@contextmanager
def write_lock_held(path) -> Iterator[None]:
    """Another program holds the database's write lock until the block ends."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"family": "ensemble"}, "Unknown model family"),
        ({"family": "mlp", "train_size": 50}, "between 100 and 60,000"),
        ({"family": "mlp", "train_size": 70_000}, "between 100 and 60,000"),
        ({"family": "svm", "train_size": 30_000}, "at most 20,000"),
        ({"family": "cnn", "epochs": 0}, "at least 1"),
        ({"family": "svm", "C": -1.0}, "must be positive"),
        ({"family": "cnn", "recipe": "fast"}, "Unknown training recipe"),
    ],
)
def test_a_request_with_bad_parameters_is_refused_with_a_sentence(options, message):
    with pytest.raises(ValueError, match=message):
        runs.TrainingRequest(**options)


def test_each_family_gets_only_its_own_options():
    keras = runs.TrainingRequest("mlp", epochs=3, augment=False)
    svm = runs.TrainingRequest("svm", C=5.0, gamma=0.01, augment=False)
    assert keras.model_options() == {"epochs": 3, "augment": False, "recipe": "full"}
    assert svm.model_options() == {"C": 5.0, "gamma": 0.01, "shifted_copies": False}
    assert "C" not in keras.describe() and "epochs" not in svm.describe() and "recipe" not in svm.describe()
    quick = runs.TrainingRequest("cnn", epochs=4, augment=False, recipe="quick")
    assert quick.model_options() == {"epochs": 4, "augment": False, "recipe": "quick"}
    assert runs.describe_settings(quick.describe()) == "quick recipe, 4 epochs, not augmented"
    # Runs recorded before there was a choice of recipe were trained with the full one.
    assert runs.TrainingRequest(**{"family": "mlp", "epochs": 3}).recipe == "full"


def test_a_run_goes_from_queued_to_succeeded_and_another_registry_follows_it(tmp_path):
    path = tmp_path / "lab.sqlite3"
    with runs.RunRegistry(path) as writer, runs.RunRegistry(path) as reader:
        run_id = writer.create_run(runs.TrainingRequest("mlp", train_size=500, epochs=2))
        assert journal_mode(path) == "wal"
        assert reader.get_run(run_id).status == "queued"

        writer.mark_running(run_id, 4242, tmp_path / "run")
        writer.record_progress(run_id, 1, 2, {"loss": 1.5, "accuracy": 0.6, "val_loss": 1.2, "val_accuracy": 0.7})
        seen = reader.get_run(run_id)
        assert (seen.status, seen.progress_done, seen.progress_total, seen.stage) == ("running", 1, 2, "epoch 1 of 2")
        assert seen.fraction_done == pytest.approx(0.5)
        assert reader.epoch_history(run_id) == {
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
        writer.mark_succeeded(run_id, outcome)
        finished = reader.get_run(run_id)
        assert finished.finished and finished.fraction_done == 1.0
        assert (finished.sha256, finished.artifact, finished.training_seconds) == ("ab" * 32, outcome["artifact"], 3.5)
        assert runs.summary_row(finished)["accuracy"] == 0.8
        # Users' registries hold these times to the second, in UTC.
        for moment in (finished.created_at, finished.started_at, finished.finished_at):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", moment), moment


def test_a_run_cannot_be_started_twice(registry, tmp_path):
    run_id = registry.create_run(runs.TrainingRequest("cnn", train_size=200, epochs=1))
    registry.mark_running(run_id, 1, tmp_path)
    with pytest.raises(DigitlabError, match="is running, so it cannot be started again"):
        registry.mark_running(run_id, 2, tmp_path)


def test_cancelling_sets_the_flag_only_while_the_run_is_unfinished(registry):
    run_id = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    assert not registry.cancel_requested(run_id)
    assert registry.request_cancel(run_id)
    assert registry.cancel_requested(run_id)
    registry.mark_finished_without_model(run_id, "cancelled", "Cancelled on request.")
    assert not registry.request_cancel(run_id)
    assert registry.get_run(run_id).status == "cancelled"


def test_a_run_whose_worker_died_is_marked_failed(registry, tmp_path):
    lost = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    alive = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    never_started = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    in_the_foreground = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    registry.mark_running(lost, finished_process_id(), tmp_path)
    registry.mark_running(alive, os.getpid(), tmp_path)
    registry.record_worker(never_started, finished_process_id())

    assert sorted(registry.mark_lost_runs()) == [lost, never_started]
    assert registry.get_run(lost).status == "failed"
    assert registry.get_run(lost).error == runs.LOST_WORKER_MESSAGE
    assert registry.get_run(never_started).status == "failed"
    assert registry.get_run(alive).status == "running"
    assert registry.get_run(in_the_foreground).status == "queued"


def test_a_queued_run_never_given_a_worker_is_marked_failed_after_the_grace_period(registry):
    stale = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    starting = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    # The launch that created ``stale`` was interrupted two minutes ago, before its worker was started.
    created = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=runs.UNSTARTED_GRACE_SECONDS + 60)
    rewrite(registry.path, "UPDATE training_runs SET created_at = ? WHERE id = ?", (created.isoformat(), stale))

    assert registry.mark_lost_runs() == [stale]
    assert registry.get_run(stale).status == "failed"
    assert registry.get_run(stale).error == runs.UNSTARTED_MESSAGE
    assert registry.get_run(starting).status == "queued"


@pytest.mark.skipif(runs.process_start(os.getpid()) is None, reason="needs Linux's /proc start times")
def test_a_running_run_whose_worker_id_now_belongs_to_a_newer_process_is_marked_failed(registry, tmp_path):
    reused = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    current = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    registry.mark_running(reused, os.getpid(), tmp_path)
    registry.mark_running(current, os.getpid(), tmp_path)
    # This test's process id was recorded for a run that started long before the process did.
    rewrite(registry.path, "UPDATE training_runs SET started_at = '2000-01-01T00:00:00+00:00' WHERE id = ?", (reused,))

    assert registry.mark_lost_runs() == [reused]
    assert registry.get_run(reused).error == runs.LOST_WORKER_MESSAGE
    assert registry.get_run(current).status == "running"


@pytest.mark.skipif(runs.process_start(os.getpid()) is None, reason="needs Linux's /proc start times")
def test_a_worker_started_long_after_its_claim_on_a_busy_machine_is_not_taken_for_another_program(registry):
    run_id = registry.enqueue_run(runs.TrainingRequest("svm", train_size=200))
    assert registry.claim_next_run(1) == run_id
    # The claim was made a minute before the worker's process began, as under heavy load.
    claimed = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=60)
    rewrite(registry.path, "UPDATE training_runs SET started_at = ? WHERE id = ?", (claimed.isoformat(), run_id))
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        registry.record_worker(run_id, process.pid)

        assert registry.mark_lost_runs() == []
        assert registry.get_run(run_id).status == "running"
    finally:
        process.kill()
        process.wait()


def test_a_run_judged_lost_whose_worker_then_finishes_is_recorded_as_succeeded_without_the_error(registry, tmp_path):
    run_id = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    registry.mark_running(run_id, finished_process_id(), tmp_path)
    assert registry.mark_lost_runs() == [run_id]

    registry.mark_succeeded(
        run_id,
        {
            "data": {"mnist_images": 200},
            "metrics": {"test": {"accuracy": 0.9, "errors": 1}},
            "training_seconds": 1.0,
            "total_seconds": 1.0,
            "artifact": "a",
            "sha256": "b",
            "size_bytes": 1,
        },
    )
    run = registry.get_run(run_id)
    assert (run.status, run.error) == ("succeeded", None)


def test_a_missing_run_is_reported_with_a_sentence(registry):
    with pytest.raises(runs.RunNotFoundError, match="no training run #99"):
        registry.get_run(99)


def test_a_finished_run_needs_a_final_status(registry):
    run_id = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    with pytest.raises(ValueError, match="failed or cancelled"):
        registry.mark_finished_without_model(run_id, "succeeded", None)


def test_learning_curves_group_succeeded_runs_by_family_and_settings(registry, tmp_path):
    def finished(family, size, accuracy, seconds, **options):
        run_id = registry.create_run(runs.TrainingRequest(family, train_size=size, **options))
        registry.mark_running(run_id, 1, tmp_path)
        registry.mark_succeeded(
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
    failed = registry.create_run(runs.TrainingRequest("mlp", train_size=500, epochs=2))
    registry.mark_finished_without_model(failed, "failed", "broken")

    rows = runs.learning_curve_rows(registry.list_runs())
    assert [(row["family"], row["train_size"], row["accuracy"]) for row in rows] == [
        ("mlp", 1000, 0.85),
        ("mlp", 2000, 0.9),
        ("svm", 1000, 0.93),
    ]
    assert rows[0]["curve"] == "MLP (2 epochs, augmented)"
    assert rows[2]["curve"] == "SVM (C 10, gamma 0.02, augmented)"
    assert [run.id for run in registry.list_runs(("failed",))] == [failed]


def test_run_labels_tell_runs_of_one_family_apart_by_their_settings(registry):
    labels = [
        registry.get_run(registry.create_run(request)).label
        for request in (
            runs.TrainingRequest("mlp", train_size=5000, epochs=1),
            runs.TrainingRequest("mlp", train_size=5000, epochs=10, augment=False, include_drawings=True),
            runs.TrainingRequest("svm", train_size=5000, C=5.0, gamma=0.01),
        )
    ]

    assert labels == [
        "#1 MLP · 5,000 images · 1 epoch, augmented",
        "#2 MLP · 5,000 images · 10 epochs, not augmented · with saved drawings",
        "#3 SVM · 5,000 images · C 5, gamma 0.01, augmented",
    ]


def test_the_command_line_lists_runs_and_refuses_an_unknown_one_with_a_sentence(tmp_path, monkeypatch, capsys):
    from digitlab.cli import main

    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(tmp_path / "lab.sqlite3"))
    with runs.RunRegistry() as registry:
        run_id = registry.create_run(runs.TrainingRequest("svm", train_size=1000))
        registry.mark_finished_without_model(run_id, "failed", "broken")

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


def test_the_command_line_shows_the_line_and_cancels_a_waiting_run(tmp_path, monkeypatch, capsys):
    from digitlab.cli import main

    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(tmp_path / "lab.sqlite3"))
    with runs.RunRegistry() as registry:
        first = registry.enqueue_run(runs.TrainingRequest("svm", train_size=1000))
        second = registry.enqueue_run(runs.TrainingRequest("mlp", train_size=1000))
        finished = registry.create_run(runs.TrainingRequest("svm", train_size=1000))
        registry.mark_finished_without_model(finished, "failed", "broken")

    assert main(["runs", "list"]) == 0
    listed = capsys.readouterr().out
    assert "(1 of 2 in line)" in listed and "(2 of 2 in line)" in listed

    assert main(["runs", "cancel", str(first)]) == 0
    assert "cancelled while it waited in line" in capsys.readouterr().out
    assert main(["runs", "cancel", str(finished)]) == 1
    assert "already ended (failed)" in capsys.readouterr().err
    assert main(["runs", "cancel", "99"]) == 2
    assert "no training run #99" in capsys.readouterr().err
    with runs.RunRegistry() as registry:
        assert [run.id for run in registry.waiting_runs()] == [second]
        assert registry.get_run(first).status == "cancelled"


def test_a_locked_registry_is_a_database_error_that_says_what_to_do(registry, monkeypatch):
    monkeypatch.setattr("digitlab.lab.database.BUSY_TIMEOUT_SECONDS", 0.1)
    with (
        runs.RunRegistry(registry.path) as waiting,
        write_lock_held(registry.path),
        pytest.raises(DatabaseError, match="could not be used: database is locked; try again once") as raised,
    ):
        waiting.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    assert str(registry.path) in str(raised.value)
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    assert registry.list_runs() == [], "the failed write left a run behind"


def test_a_registry_file_that_is_not_a_database_is_refused_with_a_sentence(tmp_path):
    path = tmp_path / "lab.sqlite3"
    path.write_bytes(b"not a database" * 200)
    with pytest.raises(DatabaseError, match="is not a digitlab database: file is not a database; move the file aside"):
        runs.RunRegistry(path)


def test_the_runs_command_reports_a_file_that_is_not_a_database_in_one_sentence(tmp_path):
    path = tmp_path / "lab.sqlite3"
    path.write_bytes(b"not a database" * 200)
    result = subprocess.run(
        [sys.executable, "-m", "digitlab", "runs", "list"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
        env={**os.environ, settings.DATABASE_VARIABLE: str(path)},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: The database {path} is damaged or is not a digitlab database") and line.endswith(
        "."
    )
    assert result.stdout == ""


def test_the_command_line_reports_a_locked_registry_with_a_sentence(tmp_path, monkeypatch, capsys):
    from digitlab.cli import main

    path = tmp_path / "lab.sqlite3"
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(path))
    with runs.RunRegistry() as registry:
        run_id = registry.create_run(runs.TrainingRequest("svm", train_size=1000))
        # A worker process id that no process has: listing will want to mark the run as failed, which is a write.
        registry.record_worker(run_id, 2**22 + 12345)
    monkeypatch.setattr("digitlab.lab.database.BUSY_TIMEOUT_SECONDS", 0.1)
    with write_lock_held(path):
        assert main(["runs", "list"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: The database {path} could not be used: database is locked; try again")


def test_the_run_commands_close_the_registries_they_open(tmp_path, monkeypatch, capsys):
    from digitlab.cli import main
    from digitlab.lab import worker

    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(tmp_path / "lab.sqlite3"))
    opened = []

    class RecordedRegistry(runs.RunRegistry):
        def __init__(self, *arguments):
            super().__init__(*arguments)
            opened.append(self)

    monkeypatch.setattr(runs, "RunRegistry", RecordedRegistry)
    monkeypatch.setattr(worker, "run_worker", lambda run_id, **options: runs.Run(run_id, "svm", "failed", {}, ""))

    assert main(["runs", "list"]) == 0
    assert main(["runs", "train", "--model", "svm", "--train-size", "1000"]) == 1
    assert len(opened) == 2
    for registry in opened:
        with pytest.raises(DatabaseError, match="closed database"):
            registry.list_runs()


def finish(registry: runs.RunRegistry, run_id: int) -> None:
    registry.mark_finished_without_model(run_id, "failed", "Stopped by the test.")


def test_runs_in_line_get_free_slots_first_come_first_served(registry):
    foreground = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    in_line = [registry.enqueue_run(runs.TrainingRequest("mlp", train_size=200, epochs=1)) for _ in range(4)]

    assert [registry.claim_next_run(2) for _ in range(3)] == [in_line[0], in_line[1], None]
    claimed = registry.get_run(in_line[0])
    assert (claimed.status, claimed.stage, claimed.worker_pid) == ("running", runs.STARTING_STAGE, None)
    assert [run.id for run in registry.waiting_runs()] == in_line[2:]
    # A run trained in the foreground is never handed to a worker, but while it trains it holds a slot.
    assert registry.get_run(foreground).status == "queued" and not registry.get_run(foreground).background
    finish(registry, in_line[0])
    finish(registry, in_line[1])
    registry.mark_running(foreground, os.getpid(), registry.path.parent)
    assert registry.claim_next_run(2) == in_line[2]
    assert registry.claim_next_run(2) is None
    finish(registry, foreground)
    assert registry.claim_next_run(2) == in_line[3]
    assert registry.claim_next_run(5) is None, "the line is empty"


def test_a_run_in_line_is_taken_by_the_worker_started_for_its_claim_and_no_other(registry, tmp_path):
    run_id = registry.enqueue_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
    with pytest.raises(DigitlabError, match=f"#{run_id} is waiting in line for a free training slot"):
        registry.mark_running(run_id, 4242, tmp_path)

    assert registry.claim_next_run(1) == run_id
    registry.record_worker(run_id, 4242)
    with pytest.raises(DigitlabError, match="is running, so it cannot be started again"):
        registry.mark_running(run_id, 4343, tmp_path)
    registry.mark_running(run_id, 4242, tmp_path)
    with pytest.raises(DigitlabError, match="is running, so it cannot be started again"):
        registry.mark_running(run_id, 4242, tmp_path)
    # The starter's note of the process comes after the worker recorded itself: it changes nothing.
    registry.record_worker(run_id, 4343)
    assert registry.get_run(run_id).worker_pid == 4242


def test_cancelling_a_run_in_line_takes_it_out_of_the_line_at_once(registry):
    first, second, third = (registry.enqueue_run(runs.TrainingRequest("svm", train_size=200)) for _ in range(3))

    assert registry.request_cancel(second)

    cancelled = registry.get_run(second)
    assert (cancelled.status, cancelled.error, cancelled.finished_at is not None) == (
        "cancelled",
        runs.CANCELLED_IN_LINE_MESSAGE,
        True,
    )
    assert [run.id for run in registry.waiting_runs()] == [first, third]
    assert [registry.claim_next_run(3) for _ in range(3)] == [first, third, None]
    assert not registry.request_cancel(second)
    # A claimed run has a worker on its way, which reads the flag before it trains.
    assert registry.request_cancel(third)
    assert (registry.get_run(third).status, registry.cancel_requested(third)) == ("running", True)


def test_runs_waiting_in_line_are_not_lost_and_an_abandoned_claim_goes_back_to_the_head_of_the_line(registry):
    waiting, abandoned, behind = (registry.enqueue_run(runs.TrainingRequest("svm", train_size=200)) for _ in range(3))
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=runs.UNSTARTED_GRACE_SECONDS + 60)
    rewrite(registry.path, "UPDATE training_runs SET created_at = ?", (long_ago.isoformat(),))
    assert registry.claim_next_run(1) == waiting
    finish(registry, waiting)
    assert registry.claim_next_run(1) == abandoned

    # Its starter is still starting the worker: the claim is left alone, and the slot stays taken.
    assert registry.mark_lost_runs() == []
    assert registry.get_run(abandoned).status == "running"
    # Its starter died before it started the worker: no process will train it, so it waits again, first in line.
    rewrite(registry.path, "UPDATE training_runs SET started_at = ? WHERE id = ?", (long_ago.isoformat(), abandoned))
    assert registry.mark_lost_runs() == []

    assert [(run.id, run.status, run.started_at) for run in registry.waiting_runs()] == [
        (abandoned, "queued", None),
        (behind, "queued", None),
    ]
    assert registry.claim_next_run(1) == abandoned


# Each process waits for the go file, then claims runs with a limit of 3 and ends each after a moment, until the
# line is empty; it prints the runs it claimed.
CLAIMER = """
import sys, time
from pathlib import Path
from digitlab.lab import runs

database, go = Path(sys.argv[1]), Path(sys.argv[2])
with runs.RunRegistry(database) as registry:
    Path(sys.argv[3]).touch()
    while not go.exists():
        time.sleep(0.005)
    claimed = []
    while registry.waiting_runs():
        run_id = registry.claim_next_run(3)
        if run_id is not None:
            claimed.append(run_id)
            time.sleep(0.02)
            registry.mark_finished_without_model(run_id, "failed", "Ended by the test.")
print(*claimed)
"""


def test_claims_from_many_processes_at_once_never_take_one_run_twice_or_exceed_the_limit(registry, tmp_path):
    in_line = [registry.enqueue_run(runs.TrainingRequest("svm", train_size=200)) for _ in range(12)]
    # The database itself records how many runs were running after every change to the runs.
    rewrite(registry.path, "CREATE TABLE observed (running INTEGER)", ())
    rewrite(
        registry.path,
        "CREATE TRIGGER count_running AFTER UPDATE ON training_runs BEGIN "
        "INSERT INTO observed SELECT COUNT(*) FROM training_runs WHERE status = 'running'; END",
        (),
    )
    go = tmp_path / "go"
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(registry.path), str(go), str(tmp_path / f"ready-{number}")],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for number in range(6)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(claimers) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    claimed = [int(run_id) for claimer in claimers for run_id in claimer.communicate(timeout=120)[0].split()]

    assert sorted(claimed) == in_line, "a run was claimed twice or never"
    connection = sqlite3.connect(registry.path)
    counts = [row[0] for row in connection.execute("SELECT running FROM observed")]
    connection.close()
    assert max(counts) == 3, f"the running runs went up to {max(counts)} with a limit of 3"


@pytest.mark.skipif(runs.process_state(os.getpid()) is None, reason="needs Linux's /proc process states")
def test_a_worker_that_ended_unreaped_is_not_alive_so_its_slot_is_freed(registry, tmp_path):
    # A worker started by a worker has no parent left to reap it; in a container nothing may reap it at all.
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while runs.process_state(process.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        run_id = registry.enqueue_run(runs.TrainingRequest("svm", train_size=200))
        assert registry.claim_next_run(1) == run_id
        registry.mark_running(run_id, process.pid, tmp_path)

        assert not runs.process_is_alive(process.pid)
        assert registry.mark_lost_runs() == [run_id]
        assert registry.running_count() == 0
    finally:
        process.wait()


def test_a_registry_from_before_the_line_is_upgraded_and_its_runs_are_not_put_in_line(tmp_path):
    from digitlab.lab.database import Schema, connect, schema_version

    path = tmp_path / "lab.sqlite3"
    older = connect(path, [Schema("runs", runs.SCHEMA.migrations[:1])])
    older.execute(
        "INSERT INTO training_runs (family, status, parameters, created_at) "
        "VALUES ('mlp', 'queued', '{\"train_size\": 200}', '2026-01-01T00:00:00+00:00')"
    )
    older.close()

    with runs.RunRegistry(path) as registry:
        (run,) = registry.list_runs()
        assert (run.status, run.background) == ("queued", False)
        assert registry.waiting_runs() == [] and registry.claim_next_run(4) is None
        assert schema_version(registry._connection, "runs") == len(runs.SCHEMA.migrations)
