"""Training in a background process that reports through the run registry.

``launch`` puts a run in the registry's line and starts queued runs while a
training slot is free (at most ``settings.max_training_runs()`` train at once),
each as ``python -m digitlab worker RUN_ID`` in its own session, so the
dashboard's script run returns at once and a browser tab closing, or the
dashboard stopping, does not stop the training. Whoever sees a slot free starts
the next run in line (:func:`start_queued_runs`): the Train page when it
submits or refreshes, and each worker when its run ends. The worker writes
progress and each epoch's figures to the database, checks the run's cancel flag between steps,
and records how the run ended, failures included. It only ever writes into the
run's own folder: the models that the dashboard and the command line use are
changed by ``promotion.promote`` alone.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from digitlab import settings
from digitlab.data.mnist import TRAIN_IMAGES, DownloadProgress, download_mnist
from digitlab.errors import DigitlabError
from digitlab.formatting import megabytes
from digitlab.lab import runs
from digitlab.lab.feedback import load_labelled_drawings
from digitlab.lab.sweeps import SweepRequest
from digitlab.models.registry import REGISTRY

LOG_NAME = "worker.log"
# How much lower than the dashboard a background worker runs (Unix niceness, 0 to 19).
WORKER_NICENESS = 10
# How often the watcher thread looks at the cancel flag, in seconds.
CANCEL_POLL_SECONDS = 0.5
# Share of the saved drawings kept out of training to score the model on, when drawings are trained on.
DRAWINGS_HELD_OUT = 0.25


class TrainingCancelled(Exception):  # noqa: N818 - it is an outcome the user asked for, not an error.
    """The user asked the run to stop."""


def launch(request: runs.TrainingRequest, database: str | os.PathLike | None = None) -> int:
    """Put a run for ``request`` in line and start the runs in line that have a free slot; return the run's id.

    The run starts at once when a slot is free, else when an earlier run ends.
    """
    database = Path(database) if database is not None else settings.database_path()
    with runs.RunRegistry(database) as registry:
        run_id = registry.enqueue_run(request)
    start_queued_runs(database)
    return run_id


def launch_sweep(request: SweepRequest, database: str | os.PathLike | None = None) -> int:
    """Put every run of a sweep in line, in order, and start those that have a free slot; return the sweep's id."""
    database = Path(database) if database is not None else settings.database_path()
    with runs.RunRegistry(database) as registry:
        sweep_id = registry.enqueue_sweep(request.base.family, request.ordered_axes(), request.requests())
    start_queued_runs(database)
    return sweep_id


def training_slots() -> int:
    """How many runs may train at once (``settings.max_training_runs``), a bad setting reported as a sentence.

    With a Ray cluster (``settings.ray_address``) the cluster's resources are the queue: each run's worker only
    relays its task, and this limit only bounds how many one server relays at once.
    """
    try:
        return settings.max_training_runs()
    except ValueError as error:
        raise DigitlabError(str(error)) from error


def start_queued_runs(database: str | os.PathLike | None = None, limit: int | None = None) -> list[int]:
    """Start a worker for each run in line, first in line first, while a training slot is free; return their ids.

    Runs that no process will finish are marked first (:meth:`~runs.RunRegistry.mark_lost_runs`), so a dead
    worker's slot is free again. Each run is claimed in the registry before its worker starts, so callers at the
    same moment in other sessions or processes never start a run twice or exceed ``limit`` (default:
    :func:`training_slots`).
    """
    database = Path(database) if database is not None else settings.database_path()
    limit = training_slots() if limit is None else limit
    started = []
    with runs.RunRegistry(database) as registry:
        registry.mark_lost_runs()
        while (run_id := registry.claim_next_run(limit)) is not None:
            try:
                process = start_worker(run_id, database)
            except OSError as error:
                registry.mark_finished_without_model(run_id, "failed", f"The training process did not start: {error}.")
                raise DigitlabError(f"The training process did not start: {error}.") from error
            registry.record_worker(run_id, process.pid)
            started.append(run_id)
    return started


def lower_priority() -> None:
    """Make this process yield the CPU to the dashboard: a reading stays quick while runs train.

    Training is throughput work that minutes can absorb; a reading is a person waiting. Niceness, and on Linux
    the idle scheduling class, only order who runs first when both want a core, so an idle machine still
    trains at full speed. (Niceness alone left readings waiting behind the runs' threads: ``bench --load``'s
    p95 was 126-288 ms with it, 48-55 ms with the idle class.)
    """
    # Linux sets both per thread, so every thread started so far (NumPy's, say) is lowered too; later ones inherit.
    for thread in process_threads():
        # Windows has no niceness, and a sandbox may forbid changing it; the run trains all the same.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICENESS)
        # Linux's idle class goes further: the run gets a core only when no ordinary process wants it.
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))


def process_threads() -> list[int]:
    """The ids of this process's threads (Linux's /proc); just the process itself where that cannot be read."""
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def start_worker(run_id: int, database: Path) -> subprocess.Popen:
    """Start the worker process for a queued run, its output going to the run folder's log."""
    folder = runs.run_folder(run_id, settings.runs_dir(Path(database)))
    folder.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, settings.DATABASE_VARIABLE: str(database)}
    with open(folder / LOG_NAME, "ab") as log:
        # A session of its own: the worker outlives the Streamlit script run (and the server) that started it.
        process = subprocess.Popen(
            [sys.executable, "-m", "digitlab", "worker", str(run_id)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=settings.PROJECT_ROOT,
            start_new_session=True,
        )
    # Waiting in a thread reaps the process when it ends, so a killed worker is seen as gone, not as a zombie.
    threading.Thread(target=process.wait, daemon=True).start()
    return process


def run_worker(
    run_id: int,
    database: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    *,
    interrupt_on_cancel: bool = False,
) -> runs.Run:
    """Train the queued run ``run_id`` in this process, recording every outcome; return the finished run.

    With ``interrupt_on_cancel`` (the worker process), a cancellation interrupts training within a
    second; otherwise it takes effect at the end of the current epoch or stage.
    """
    database = Path(database) if database is not None else settings.database_path()
    with runs.RunRegistry(database) as registry:
        run = registry.get_run(run_id)
        folder = runs.run_folder(run_id, settings.runs_dir(database))
        registry.mark_running(run_id, os.getpid(), folder)
        try:
            if registry.cancel_requested(run_id):
                raise TrainingCancelled
            watcher = _CancelWatcher(database, run_id) if interrupt_on_cancel else nullcontext()
            try:
                with watcher:
                    outcome = _train(registry, run, folder, database, data_dir)
            finally:
                # An interrupt that lands between a write's BEGIN and its error handling leaves that transaction
                # open, and recording how the run ended would then fail; it only held progress, safe to drop.
                registry.roll_back_interrupted_write()
        except (TrainingCancelled, KeyboardInterrupt):
            registry.mark_finished_without_model(run_id, "cancelled", "Cancelled on request.")
        except Exception as error:  # noqa: BLE001 - whatever broke, the run must end recorded, not stay running.
            if registry.cancel_requested(run_id):
                # The cancel watcher's interrupt can cut a call short and surface as that call's own error (a Ray
                # call interrupted mid-flight reports a lost connection); the user asked for the run to stop.
                registry.mark_finished_without_model(run_id, "cancelled", "Cancelled on request.")
            elif isinstance(error, DigitlabError):
                registry.mark_finished_without_model(run_id, "failed", str(error))
            else:
                traceback.print_exc()
                registry.mark_finished_without_model(run_id, "failed", f"{type(error).__name__}: {error}")
        else:
            registry.mark_succeeded(run_id, outcome)
        finished = registry.get_run(run_id)
    _start_next_runs(database)
    return finished


def _start_next_runs(database: Path) -> None:
    """Hand the slot this run held to the next run in line; a failure here must not change how the run ended."""
    try:
        start_queued_runs(database)
    except DigitlabError as error:
        print(
            f"The next run in line could not be started: {error} The Train page starts it when it is next open.",
            file=sys.stderr,
        )


def _train(registry: runs.RunRegistry, run: runs.Run, folder: Path, database: Path, data_dir) -> dict[str, Any]:
    from digitlab.training import train_and_record

    request = runs.TrainingRequest(**run.parameters)
    started = time.perf_counter()
    drawings_train, drawings_scored = _saved_drawings(request, database)

    def report(done: int, total: int, details: dict) -> None:
        registry.record_progress(run.id, done, total, details)
        if registry.cancel_requested(run.id):
            raise TrainingCancelled

    address = settings.ray_address()
    if address is not None:
        # Imported only here: without a cluster, nothing of Ray is loaded.
        from digitlab.lab.cluster import train_on_cluster

        entry = train_on_cluster(
            request.family,
            request.model_options(),
            seed=request.seed,
            train_size=request.train_size,
            extra_training=drawings_train,
            progress=report,
            folder=folder,
            address=address,
        )
    else:
        _download_mnist(registry, run.id, data_dir)
        # The download's percentages made the progress bar full; training counts its own steps from nothing.
        registry.record_progress(run.id, 0, 0, {"stage": "training"})
        entry = train_and_record(
            request.family,
            seed=request.seed,
            train_size=request.train_size,
            models_dir=folder,
            data_dir=data_dir,
            progress=report,
            extra_training=drawings_train,
            **request.model_options(),
        )
    registry.record_stage(run.id, "scoring the saved drawings")
    drawings_metrics = _drawings_metrics(folder, request.family, drawings_scored)
    return {
        "data": {
            "mnist_images": min(request.train_size, TRAIN_IMAGES),
            "train_images": entry.train_size,
            "train_data_sha256": entry.train_data_sha256,
            "test_data_sha256": entry.test_data_sha256,
            "drawings_in_training": 0 if drawings_train is None else len(drawings_train[1]),
            "drawings_scored": 0 if drawings_scored is None else len(drawings_scored[1]),
        },
        "metrics": {
            "test": {
                "accuracy": entry.metrics.accuracy,
                "errors": entry.metrics.errors,
                "f1_macro": entry.metrics.f1_macro,
                "precision_macro": entry.metrics.precision_macro,
            },
            "drawings": drawings_metrics,
            "history": entry.history or {},
            "complexity": entry.complexity,
        },
        "training_seconds": entry.training_seconds,
        "total_seconds": round(time.perf_counter() - started, 2),
        "artifact": str(folder / entry.artifact),
        "sha256": entry.sha256,
        "size_bytes": entry.size_bytes,
    }


def _download_mnist(registry: runs.RunRegistry, run_id: int, data_dir) -> None:
    """Fetch the MNIST files the data folder lacks, recording each percent as the run's progress and stage.

    The first run on a machine downloads about 11 MB before it can train; the Train page shows the run's
    stage, so the user sees the download there rather than a run that seems stuck.
    """
    recorded_percent = -1

    def report(progress: DownloadProgress) -> None:
        nonlocal recorded_percent
        percent = int(100 * download_fraction(progress))
        # A write per whole percent keeps the database quiet; one per 64 KiB chunk would flood it.
        if percent == recorded_percent:
            return
        recorded_percent = percent
        registry.record_progress(run_id, percent, 100, {"stage": download_stage(progress)})
        if registry.cancel_requested(run_id):
            raise TrainingCancelled

    download_mnist(data_dir, progress=report)


def download_fraction(progress: DownloadProgress) -> float:
    """How far the whole download is, counting each file as an equal share."""
    within = progress.bytes_done / progress.bytes_total if progress.bytes_total else 0.0
    return min(1.0, (progress.file_number - 1 + within) / progress.file_count)


def download_stage(progress: DownloadProgress) -> str:
    """The run's stage while MNIST downloads: the file, which of how many, and its megabytes so far."""
    return (
        f"downloading MNIST (first use on this machine): file {progress.file_number} of {progress.file_count}, "
        f"{megabytes(progress.bytes_done, progress.bytes_total)}"
    )


def _saved_drawings(request: runs.TrainingRequest, database: Path):
    """The saved drawings to train on and to score on: (images, labels) pairs, or None where there are none.

    Drawings that training does not use are all scored; when they are trained on, a fixed share is
    held out, so their score still says how well the model reads drawings it has not seen.
    """
    try:
        images, labels = load_labelled_drawings(database)
    except DigitlabError:
        if request.include_drawings:
            raise
        # Scoring on the drawings is a bonus; a damaged store must not cost the user the run.
        return None, None
    if len(labels) == 0:
        return None, None
    if not request.include_drawings:
        return None, (images, labels)
    order = np.random.default_rng(request.seed).permutation(len(labels))
    # At least one drawing is held out to score on, unless there is only one, which training gets.
    held_out = max(1, round(len(labels) * DRAWINGS_HELD_OUT)) if len(labels) > 1 else 0
    scored, trained = np.sort(order[:held_out]), np.sort(order[held_out:])
    return (images[trained], labels[trained]), ((images[scored], labels[scored]) if held_out else None)


def _drawings_metrics(folder: Path, family: str, drawings) -> dict[str, Any]:
    """Accuracy on the saved drawings that training did not see; empty when there are none."""
    if drawings is None:
        return {}
    from digitlab.persistence import load_model

    images, labels = drawings
    predictions = load_model(family, folder).predict(images)
    return {"accuracy": float((predictions == labels).mean()), "count": int(len(labels))}


class _CancelWatcher:
    """A thread that interrupts training soon after a cancellation is requested, not only between epochs.

    It raises SIGINT in this process, which Python turns into ``KeyboardInterrupt``
    in the main thread at its next step (between batches for Keras). It has its
    own registry, as the main thread's may be inside a transaction.
    """

    def __init__(self, database: Path, run_id: int):
        self.database = database
        self.run_id = run_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with runs.RunRegistry(self.database) as registry:
            while not self.stop.wait(CANCEL_POLL_SECONDS):
                if registry.cancel_requested(self.run_id):
                    os.kill(os.getpid(), signal.SIGINT)
                    return

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            raise ValueError("Only the main thread can be interrupted on cancellation.")
        self.thread.start()
        return self

    def __exit__(self, *exception):
        self.stop.set()
        # Waiting here means an interrupt the thread has already sent arrives inside the block, not later.
        self.thread.join()
        return False


def trainable_families() -> dict[str, str]:
    """Family name to title, for the families a run can train."""
    return {name: REGISTRY[name].title for name in runs.TRAINABLE_FAMILIES}
