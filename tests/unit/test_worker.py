"""The training worker: runs recorded from start to end, and cancelled or crashed runs that change nothing in use."""

import hashlib
import signal
import time
from pathlib import Path

import pytest

from digitlab import settings
from digitlab.errors import DigitlabError
from digitlab.lab import feedback, promotion, runs, worker
from tests.support import stop_unfinished_workers

# A worker process imports TensorFlow and loads MNIST before its first epoch; on a busy 2-core machine that
# can take a minute.
WAIT_SECONDS = 300


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def wait_for(database: Path, run_id: int, condition, what: str) -> runs.Run:
    """Poll the registry, as the Train page does, until ``condition(run)`` holds."""
    with runs.RunRegistry(database) as registry:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            run = registry.get_run(run_id)
            if condition(run):
                return run
            time.sleep(0.3)
    log = runs.run_folder(run_id, database.parent / "runs") / worker.LOG_NAME
    pytest.fail(f"run #{run_id} never {what}; last state {run}; log:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def active_models(tmp_path_factory, mnist_dir):
    """A lab folder whose promoted models (a tiny MLP) are in use, beside its database."""
    from digitlab.training import train_and_record

    lab = tmp_path_factory.mktemp("lab")
    trained = lab / "trained"
    train_and_record("mlp", epochs=1, train_size=300, models_dir=trained, data_dir=mnist_dir)
    promotion.promote(trained, "mlp", root=lab / "active", base=trained)
    return lab


@pytest.fixture
def no_leftover_workers(active_models):
    yield
    stop_unfinished_workers(active_models / "digitlab.sqlite3")


def queued_run(database: Path, request: runs.TrainingRequest) -> int:
    with runs.RunRegistry(database) as registry:
        return registry.create_run(request)


def test_a_run_trains_on_mnist_and_saved_drawings_and_records_everything(tmp_path, mnist_dir, mnist_train):
    images, labels = mnist_train
    database = tmp_path / "lab.sqlite3"
    # Eight drawings saved through the feedback store into the same database, as the draw page saves them.
    with feedback.FeedbackStore(database) as store:
        for image, label in zip(images[-8:], labels[-8:], strict=True):
            store.save(
                original=feedback.original_png(image),
                model_input=image,
                label=int(label),
                predictions=[],
                model_versions={},
            )
    run_id = queued_run(database, runs.TrainingRequest("mlp", train_size=300, epochs=1, include_drawings=True))

    run = worker.run_worker(run_id, database, mnist_dir)

    assert run.status == "succeeded", run.error
    assert run.data["mnist_images"] == 300
    assert (run.data["drawings_in_training"], run.data["drawings_scored"]) == (6, 2)
    assert run.data["train_images"] == 306
    assert 0.0 <= run.metrics["test"]["accuracy"] <= 1.0
    assert run.metrics["drawings"]["count"] == 2
    assert len(run.metrics["history"]["loss"]) == 1
    assert run.training_seconds > 0 and run.total_seconds >= run.training_seconds
    artefact = Path(run.artifact)
    assert artefact.parent == database.parent / "runs" / f"run-{run_id:05d}"
    assert hashlib.sha256(artefact.read_bytes()).hexdigest() == run.sha256
    with runs.RunRegistry(database) as registry:
        assert registry.epoch_history(run_id)["val_accuracy"] == run.metrics["history"]["val_accuracy"]


def test_a_run_that_cannot_get_its_data_ends_failed_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.MNIST_MIRRORS_VARIABLE, "http://127.0.0.1:9/")
    database = tmp_path / "lab.sqlite3"
    run_id = queued_run(database, runs.TrainingRequest("mlp", train_size=300, epochs=1))

    run = worker.run_worker(run_id, database, tmp_path / "no-mnist-here")

    assert run.status == "failed"
    assert "MNIST" in run.error or "mnist" in run.error
    assert run.artifact is None and run.finished_at is not None


@pytest.fixture
def recorded_progress(monkeypatch) -> list[tuple[str, int, int]]:
    """Every (stage, done, total) the worker records, in order, as the Train page would read them one by one."""
    recorded = []
    original = runs.RunRegistry.record_progress

    def recording(registry, run_id, done, total, details):
        original(registry, run_id, done, total, details)
        recorded.append((registry.get_run(run_id).stage, done, total))

    monkeypatch.setattr(runs.RunRegistry, "record_progress", recording)
    return recorded


def test_the_first_run_on_a_machine_shows_the_mnist_download_as_its_stage(
    tmp_path, mnist_dir, monkeypatch, recorded_progress
):
    # The machine's data folder is empty; the mirror serves the session's copy of the four files.
    monkeypatch.setenv(settings.MNIST_MIRRORS_VARIABLE, mnist_dir.as_uri())
    data_dir = tmp_path / "mnist"

    def stop_after_the_download(*arguments, **options):
        raise DigitlabError("Stopped once the data was there.")

    monkeypatch.setattr("digitlab.training.train_and_record", stop_after_the_download)
    database = tmp_path / "lab.sqlite3"
    run_id = queued_run(database, runs.TrainingRequest("mlp", train_size=300, epochs=1))

    run = worker.run_worker(run_id, database, data_dir)

    assert (run.status, run.error) == ("failed", "Stopped once the data was there.")
    downloading = [entry for entry in recorded_progress if entry[0].startswith("downloading MNIST")]
    assert downloading[0][0].startswith("downloading MNIST (first use on this machine): file 1 of 4, 0.0 of ")
    assert downloading[-1][1:] == (100, 100)
    assert any(
        stage.startswith("downloading MNIST (first use on this machine): file 4 of 4") for stage, *_ in downloading
    )
    assert [done for _, done, _ in downloading] == sorted({done for _, done, _ in downloading})
    # Training then starts its own count from nothing, not from a full bar.
    assert recorded_progress[-1] == ("training", 0, 0)
    assert sorted(path.name for path in data_dir.iterdir()) == sorted(path.name for path in mnist_dir.glob("*.gz"))


def test_a_run_cancelled_while_mnist_downloads_stops_there(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv(settings.MNIST_MIRRORS_VARIABLE, mnist_dir.as_uri())
    database = tmp_path / "lab.sqlite3"
    run_id = queued_run(database, runs.TrainingRequest("mlp", train_size=300, epochs=1))
    original = runs.RunRegistry.record_progress

    def cancel_on_first_report(registry, run_id, done, total, details):
        original(registry, run_id, done, total, details)
        registry.request_cancel(run_id)

    monkeypatch.setattr(runs.RunRegistry, "record_progress", cancel_on_first_report)

    run = worker.run_worker(run_id, database, tmp_path / "mnist")

    assert (run.status, run.error) == ("cancelled", "Cancelled on request.")
    assert run.progress_total == 100 and run.progress_done < 100


def test_a_run_cancelled_before_it_starts_never_trains(tmp_path, mnist_dir):
    database = tmp_path / "lab.sqlite3"
    run_id = queued_run(database, runs.TrainingRequest("mlp", train_size=300, epochs=1))
    with runs.RunRegistry(database) as registry:
        registry.request_cancel(run_id)

    run = worker.run_worker(run_id, database, mnist_dir)

    assert (run.status, run.error, run.progress_done) == ("cancelled", "Cancelled on request.", 0)


def test_an_interrupt_inside_a_write_still_records_the_run_as_cancelled(tmp_path, monkeypatch):
    database = tmp_path / "lab.sqlite3"
    run_id = queued_run(database, runs.TrainingRequest("mlp", train_size=300, epochs=1))

    def interrupted_mid_write(registry, *arguments):
        # The cancel watcher's interrupt can arrive just after a progress write has begun its transaction.
        registry._connection.execute("BEGIN IMMEDIATE")
        raise KeyboardInterrupt

    monkeypatch.setattr(worker, "_train", interrupted_mid_write)

    run = worker.run_worker(run_id, database)

    assert (run.status, run.error) == ("cancelled", "Cancelled on request.")


LOST_CLUSTER = "Lost touch with the Ray cluster while the run trained: connection reset by peer"


@pytest.mark.parametrize(
    ("asked_to_cancel", "ending"),
    [(True, ("cancelled", "Cancelled on request.")), (False, ("failed", LOST_CLUSTER))],
)
def test_an_error_ends_the_run_cancelled_only_when_a_cancellation_was_asked_for(
    tmp_path, monkeypatch, asked_to_cancel, ending
):
    database = tmp_path / "lab.sqlite3"
    run_id = queued_run(database, runs.TrainingRequest("mlp", train_size=300, epochs=1))

    def lost_cluster(registry, run, *arguments):
        # The cancel watcher's interrupt can surface as the interrupted call's own error, such as this one.
        if asked_to_cancel:
            registry.request_cancel(run.id)
        raise DigitlabError(LOST_CLUSTER)

    monkeypatch.setattr(worker, "_train", lost_cluster)

    run = worker.run_worker(run_id, database)

    assert (run.status, run.error) == ending


@pytest.mark.usefixtures("no_leftover_workers")
def test_cancelling_a_worker_process_mid_training_leaves_the_models_in_use_untouched(active_models):
    database = active_models / "digitlab.sqlite3"
    before = snapshot(active_models / "active")
    run_id = worker.launch(runs.TrainingRequest("mlp", train_size=3000, epochs=40), database)

    wait_for(database, run_id, lambda run: run.progress_done >= 1 or run.finished, "finished an epoch")
    with runs.RunRegistry(database) as registry:
        assert registry.request_cancel(run_id)
    run = wait_for(database, run_id, lambda run: run.finished, "finished")

    assert run.status == "cancelled"
    assert 1 <= run.progress_done < 40
    assert run.artifact is None
    assert snapshot(active_models / "active") == before


@pytest.mark.usefixtures("no_leftover_workers")
def test_a_crashed_worker_process_is_marked_failed_and_the_models_in_use_stay_byte_identical(active_models):
    database = active_models / "digitlab.sqlite3"
    pointer = (active_models / "active" / promotion.POINTER_NAME).read_bytes()
    before = snapshot(active_models / "active")
    run_id = queued_run(database, runs.TrainingRequest("mlp", train_size=3000, epochs=40))
    process = worker.start_worker(run_id, database)

    wait_for(database, run_id, lambda run: run.progress_done >= 1 or run.finished, "finished an epoch")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    with runs.RunRegistry(database) as registry:
        assert registry.mark_lost_runs() == [run_id]
        run = registry.get_run(run_id)

    assert (run.status, run.error) == ("failed", runs.LOST_WORKER_MESSAGE)
    assert (active_models / "active" / promotion.POINTER_NAME).read_bytes() == pointer
    assert snapshot(active_models / "active") == before


def test_a_worker_does_not_take_a_run_still_waiting_in_line(tmp_path):
    database = tmp_path / "lab.sqlite3"
    with runs.RunRegistry(database) as registry:
        run_id = registry.enqueue_run(runs.TrainingRequest("mlp", train_size=300, epochs=1))

    with pytest.raises(DigitlabError, match=f"#{run_id} is waiting in line for a free training slot"):
        worker.run_worker(run_id, database)

    with runs.RunRegistry(database) as registry:
        assert [run.id for run in registry.waiting_runs()] == [run_id]


def test_a_run_that_ends_hands_its_slot_to_the_next_run_in_line(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.MAX_TRAINING_RUNS_VARIABLE, "1")
    database = tmp_path / "lab.sqlite3"
    started = []

    class StartedWorker:
        pid = 4242

    def start_worker(run_id, database):
        started.append(run_id)
        return StartedWorker()

    def broken_training(*arguments):
        # While this run trains it holds the only slot: asking for a start starts nothing.
        assert worker.start_queued_runs(database) == []
        raise DigitlabError("Broken on purpose.")

    monkeypatch.setattr(worker, "start_worker", start_worker)
    monkeypatch.setattr(worker, "_train", broken_training)
    with runs.RunRegistry(database) as registry:
        current = registry.create_run(runs.TrainingRequest("mlp", train_size=300, epochs=1))
        waiting = [registry.enqueue_run(runs.TrainingRequest("mlp", train_size=300, epochs=1)) for _ in range(2)]

    run = worker.run_worker(current, database)

    assert (run.status, run.error) == ("failed", "Broken on purpose.")
    assert started == waiting[:1]
    with runs.RunRegistry(database) as registry:
        handed_over = registry.get_run(waiting[0])
        assert (handed_over.status, handed_over.worker_pid) == ("running", StartedWorker.pid)
        assert [run.id for run in registry.waiting_runs()] == waiting[1:]
