"""The run registry: every training run started from the dashboard or the command line, in the lab's database.

A run is created ``queued`` with its parameters, moves to ``running`` when a
worker picks it up, and ends ``succeeded``, ``failed`` or ``cancelled``. A run
for the background (the Train page's) waits in line: at most
``settings.max_training_runs()`` runs are ``running`` at once, and
:meth:`RunRegistry.claim_next_run` gives a free slot to the oldest run in line
inside one write transaction, so two dashboards, or a dashboard and a finishing
worker, never start one run twice; as the line lives in the database, it
outlives a restart of the dashboard. A run trained in the foreground (``runs
train`` on the command line) never waits in line. The worker writes its
progress and each epoch's loss and accuracy here, so any process (the Train
page in another browser tab, the command line) can follow it; the page asks for
a cancellation by setting a flag the worker reads.
A :class:`RunRegistry` does all of that reading and writing, and reports SQLite's
failures as a ``DatabaseError`` sentence. Each run's artefacts live in its own
folder under ``settings.runs_dir()``, never in the shipped ``models/``.
"""

import datetime
import json
import os
import sqlite3
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from digitlab import settings
from digitlab.clock import utc_now, utc_timestamp
from digitlab.data.mnist import TRAIN_IMAGES
from digitlab.errors import DigitlabError
from digitlab.lab.database import Schema, connect, reports_sqlite_errors, transaction
from digitlab.models.neural import RECIPES, KerasClassifier
from digitlab.models.registry import REGISTRY
from digitlab.models.svm import DEFAULT_C, DEFAULT_GAMMA

# Families that learn from images; a family built from other trained ones (the ensemble) is not trained here.
TRAINABLE_FAMILIES = tuple(name for name, family in REGISTRY.items() if not family.members)
KERAS_FAMILIES = tuple(name for name in TRAINABLE_FAMILIES if issubclass(REGISTRY[name], KerasClassifier))
FINISHED = ("succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")
# The SVM's cost grows faster than linearly with its training images; above this it takes many minutes.
LARGEST_SVM_TRAIN_SIZE = 20_000
LOST_WORKER_MESSAGE = (
    "The training process stopped without reporting (it was killed or crashed); worker.log in the run's folder "
    "says more."
)
# A run is created just before its worker starts (or, on the command line, just before it trains in the
# foreground); one still queued with no process after this long was never started and never will be.
UNSTARTED_GRACE_SECONDS = 60
# Run times are stored to the second and the boot time to the second, so a worker's start may seem this late.
PROCESS_START_SLACK_SECONDS = 5
UNSTARTED_MESSAGE = (
    "The training process was never started (the launch was interrupted before it began); start the run again."
)
# The stage of a run that has its training slot while its worker process starts.
STARTING_STAGE = "starting the worker"
CANCELLED_IN_LINE_MESSAGE = "Cancelled while it waited in line; it never started."

SCHEMA = Schema(
    "runs",
    (
        """
        CREATE TABLE training_runs (
            id INTEGER PRIMARY KEY,
            family TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
            parameters TEXT NOT NULL,
            data TEXT,
            metrics TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            training_seconds REAL,
            total_seconds REAL,
            folder TEXT,
            artifact TEXT,
            sha256 TEXT,
            size_bytes INTEGER,
            progress_done INTEGER NOT NULL DEFAULT 0,
            progress_total INTEGER NOT NULL DEFAULT 0,
            stage TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            worker_pid INTEGER,
            error TEXT
        );
        CREATE INDEX training_runs_by_status ON training_runs (status);
        CREATE TABLE training_run_epochs (
            run_id INTEGER NOT NULL REFERENCES training_runs (id) ON DELETE CASCADE,
            epoch INTEGER NOT NULL,
            loss REAL,
            accuracy REAL,
            val_loss REAL,
            val_accuracy REAL,
            PRIMARY KEY (run_id, epoch)
        );
        """,
        # 1 for a run that waits in line for a worker process; 0 for one its creator trains in the foreground.
        """
        ALTER TABLE training_runs ADD COLUMN background INTEGER NOT NULL DEFAULT 0;
        """,
        # A sweep: runs queued together that differ in one or two settings (``digitlab.lab.sweeps``).
        """
        CREATE TABLE training_sweeps (
            id INTEGER PRIMARY KEY,
            family TEXT NOT NULL,
            axes TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        ALTER TABLE training_runs ADD COLUMN sweep_id INTEGER REFERENCES training_sweeps (id);
        """,
    ),
)
EPOCH_COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy")


class RunNotFoundError(DigitlabError):
    """No run with the requested id is in the registry."""


class InvalidRequestError(DigitlabError, ValueError):
    """A training request's parameters are out of range.

    A ValueError for callers that check arguments, and a DigitlabError so that the command line and the
    dashboard print its sentence instead of a traceback.
    """


@dataclass(frozen=True)
class TrainingRequest:
    """What a user asks to train: a family and its main hyperparameters."""

    family: str
    train_size: int = 10_000
    epochs: int = 5
    augment: bool = True
    # The Keras families' training recipe (``digitlab.models.neural.RECIPES``); runs recorded before there was a
    # choice were trained with the full one.
    recipe: str = "full"
    C: float = DEFAULT_C
    gamma: float = DEFAULT_GAMMA
    include_drawings: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.family not in TRAINABLE_FAMILIES:
            raise InvalidRequestError(
                f"Unknown model family {self.family!r}; choose one of {', '.join(TRAINABLE_FAMILIES)}."
            )
        if not 100 <= self.train_size <= TRAIN_IMAGES:
            raise InvalidRequestError(f"train_size must be between 100 and {TRAIN_IMAGES:,}, not {self.train_size}.")
        if self.family == "svm" and self.train_size > LARGEST_SVM_TRAIN_SIZE:
            raise InvalidRequestError(
                f"The SVM trains on at most {LARGEST_SVM_TRAIN_SIZE:,} images from the dashboard "
                f"(its cost grows faster than the data); use 'python -m digitlab train --model svm' for more."
            )
        if self.epochs < 1:
            raise InvalidRequestError(f"epochs must be at least 1, not {self.epochs}.")
        if self.recipe not in RECIPES:
            raise InvalidRequestError(f"Unknown training recipe {self.recipe!r}; choose one of {', '.join(RECIPES)}.")
        # "not C > 0" rather than "C <= 0": a NaN fails every comparison and must be refused too.
        if not (self.C > 0 and self.gamma > 0):
            raise InvalidRequestError(f"C and gamma must be positive, not C={self.C} and gamma={self.gamma}.")

    def model_options(self) -> dict[str, Any]:
        """Keyword arguments for ``training.train_and_record``: only what this family understands."""
        if self.family in KERAS_FAMILIES:
            return {"epochs": self.epochs, "augment": self.augment, "recipe": self.recipe}
        # The SVM's augmentation is its one-pixel-shifted copies; it trains to convergence, without epochs.
        return {"C": self.C, "gamma": self.gamma, "shifted_copies": self.augment}

    def describe(self) -> dict[str, Any]:
        """The parameters that mean something for this family, as recorded in the registry."""
        described = asdict(self)
        if self.family in KERAS_FAMILIES:
            del described["C"], described["gamma"]
        else:
            del described["epochs"], described["recipe"]
        return described


# The defaults a new request starts from, for the command line and the Train page to show and use.
REQUEST_DEFAULTS: dict[str, Any] = {
    parameter.name: parameter.default for parameter in fields(TrainingRequest) if parameter.name != "family"
}


def recipe_defaults(family: str, recipe: str) -> dict[str, Any]:
    """The epochs and augmentation a request of a Keras family starts from with ``recipe``."""
    if recipe == "quick":
        settings = REGISTRY[family].quick_settings
        return {"epochs": settings["epochs"], "augment": settings["augment"]}
    return {"epochs": REQUEST_DEFAULTS["epochs"], "augment": REQUEST_DEFAULTS["augment"]}


@dataclass
class Run:
    """One row of the registry, with its JSON columns decoded."""

    id: int
    family: str
    status: str
    parameters: dict[str, Any]
    created_at: str
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None
    training_seconds: float | None = None
    total_seconds: float | None = None
    folder: str | None = None
    artifact: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    progress_done: int = 0
    progress_total: int = 0
    stage: str | None = None
    cancel_requested: bool = False
    worker_pid: int | None = None
    error: str | None = None
    background: bool = False
    sweep_id: int | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def fraction_done(self) -> float:
        if self.status == "succeeded":
            return 1.0
        return min(1.0, self.progress_done / self.progress_total) if self.progress_total else 0.0

    @property
    def train_size(self) -> int | None:
        return self.data.get("mnist_images", self.parameters.get("train_size"))

    @property
    def label(self) -> str:
        """``#10 MLP · 5,000 images · 5 epochs, augmented``: runs of one family differ in their settings."""
        label = f"#{self.id} {self.family.upper()} · {self.parameters.get('train_size', 0):,} images"
        label += f" · {describe_settings(self.parameters)}"
        return label + (" · with saved drawings" if self.parameters.get("include_drawings") else "")


@dataclass(frozen=True)
class SweepRecord:
    """One sweep as recorded: its family and, for each setting it varies, its values in increasing order."""

    id: int
    family: str
    axes: dict[str, list[float]]
    created_at: str


def describe_settings(parameters: dict[str, Any]) -> str:
    """A run's family settings in words, such as ``quick recipe, 4 epochs, not augmented`` or
    ``C 10, gamma 0.02, not augmented``."""
    parts = ["quick recipe"] if parameters.get("recipe") == "quick" else []
    if "epochs" in parameters:
        parts.append(f"{parameters['epochs']} epoch" + ("" if parameters["epochs"] == 1 else "s"))
    parts += [f"{key} {parameters[key]:g}" for key in ("C", "gamma") if key in parameters]
    parts.append("augmented" if parameters.get("augment") else "not augmented")
    return ", ".join(parts)


def run_folder(run_id: int, root: Path | None = None) -> Path:
    return (root if root is not None else settings.runs_dir()) / f"run-{run_id:05d}"


def process_is_alive(pid: int | None, started_by: str | None = None) -> bool:
    """Whether process ``pid`` exists and, given ``started_by`` (an ISO time), had started by then.

    Process ids are reused: a process that started after the run recorded its worker is another program. A
    zombie (ended, never reaped, as a worker started by a worker is in a container whose first process reaps
    nothing) is not alive.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if process_state(pid) == "Z":
        return False
    if started_by is None:
        return True
    started = process_start(pid)
    if started is None:
        return True
    recorded = datetime.datetime.fromisoformat(started_by)
    return started <= recorded + datetime.timedelta(seconds=PROCESS_START_SLACK_SECONDS)


def process_state(pid: int) -> str | None:
    """Process ``pid``'s state letter from Linux's /proc (``Z`` for a zombie); None where that cannot be read."""
    try:
        # The command name (the second field) may hold spaces, so fields are counted after its parenthesis.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def process_start(pid: int) -> datetime.datetime | None:
    """When process ``pid`` started, read from Linux's /proc; None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        lines = Path("/proc/stat").read_text().splitlines()
        boot = next(int(line.split()[1]) for line in lines if line.startswith("btime "))
        # The command name (the second field) may hold spaces, so fields are counted after its parenthesis;
        # the start time, in clock ticks since boot, is the 22nd field.
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return datetime.datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), datetime.UTC)


def _never_started(run: Run, moment: datetime.datetime) -> bool:
    """A foreground run still queued with no process long after it was created; runs in line wait for a slot."""
    if run.status != "queued" or run.worker_pid or run.background:
        return False
    return _older_than_grace(run.created_at, moment)


def _claimed_without_worker(run: Run) -> bool:
    """A run that holds a training slot while whoever claimed it starts its worker (or died doing so)."""
    return run.background and run.status == "running" and run.worker_pid is None


def _older_than_grace(moment_text: str | None, moment: datetime.datetime) -> bool:
    if moment_text is None:
        return True
    age = moment - datetime.datetime.fromisoformat(moment_text)
    return age.total_seconds() > UNSTARTED_GRACE_SECONDS


def _sweep_from_row(row: sqlite3.Row) -> SweepRecord:
    return SweepRecord(row["id"], row["family"], json.loads(row["axes"]), row["created_at"])


def _run_from_row(row: sqlite3.Row) -> Run:
    values = dict(row)
    for column in ("parameters", "data", "metrics"):
        values[column] = json.loads(values[column]) if values[column] else {}
    values["cancel_requested"] = bool(values["cancel_requested"])
    values["background"] = bool(values["background"])
    return Run(**values)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


class RunRegistry:
    """The training runs in one database file (default: ``settings.database_path()``), created or migrated as needed.

    Each process and thread that follows a run opens its own registry: WAL lets the dashboard read while a
    worker writes, and a registry's connection holds at most one transaction at a time.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else settings.database_path()
        self._connection = connect(self.path, [SCHEMA])

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> "RunRegistry":
        return self

    def __exit__(self, *exception) -> None:
        self.close()

    # Reading.

    @reports_sqlite_errors
    def get_run(self, run_id: int) -> Run:
        row = self._connection.execute("SELECT * FROM training_runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"There is no training run #{run_id}; 'python -m digitlab runs list' shows them.")
        return _run_from_row(row)

    @reports_sqlite_errors
    def list_runs(self, statuses: tuple[str, ...] | None = None) -> list[Run]:
        """Every run, newest first, optionally only those with one of ``statuses``."""
        query, arguments = "SELECT * FROM training_runs", ()
        if statuses:
            query += f" WHERE status IN ({', '.join('?' * len(statuses))})"
            arguments = statuses
        return [_run_from_row(row) for row in self._connection.execute(query + " ORDER BY id DESC", arguments)]

    @reports_sqlite_errors
    def epoch_history(self, run_id: int) -> dict[str, list[float]]:
        """The run's per-epoch figures in the layout of a Keras history (and of the manifest's ``history``)."""
        rows = self._connection.execute(
            "SELECT * FROM training_run_epochs WHERE run_id = ? ORDER BY epoch", (run_id,)
        ).fetchall()
        return {column: [row[column] for row in rows if row[column] is not None] for column in EPOCH_COLUMNS}

    @reports_sqlite_errors
    def waiting_runs(self) -> list[Run]:
        """The runs waiting in line for a training slot, first in line first."""
        rows = self._connection.execute(
            "SELECT * FROM training_runs WHERE status = 'queued' AND background = 1 ORDER BY id"
        )
        return [_run_from_row(row) for row in rows]

    @reports_sqlite_errors
    def running_count(self) -> int:
        """How many runs hold a training slot: those training, in the background or the foreground, or starting."""
        return self._connection.execute("SELECT COUNT(*) FROM training_runs WHERE status = 'running'").fetchone()[0]

    @reports_sqlite_errors
    def cancel_requested(self, run_id: int) -> bool:
        row = self._connection.execute("SELECT cancel_requested FROM training_runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    # Writing: each method is one transaction.

    @reports_sqlite_errors
    def create_run(self, request: TrainingRequest) -> int:
        """Record a queued run and return its id."""
        with transaction(self._connection) as connection:
            cursor = connection.execute(
                "INSERT INTO training_runs (family, status, parameters, created_at) VALUES (?, 'queued', ?, ?)",
                (request.family, json.dumps(request.describe()), utc_timestamp()),
            )
        return int(cursor.lastrowid)

    @reports_sqlite_errors
    def enqueue_run(self, request: TrainingRequest) -> int:
        """Put a run in line for a worker process (see :meth:`claim_next_run`) and return its id."""
        with transaction(self._connection) as connection:
            cursor = connection.execute(
                "INSERT INTO training_runs (family, status, parameters, created_at, background) "
                "VALUES (?, 'queued', ?, ?, 1)",
                (request.family, json.dumps(request.describe()), utc_timestamp()),
            )
        return int(cursor.lastrowid)

    @reports_sqlite_errors
    def enqueue_sweep(self, family: str, axes: dict[str, list[float]], requests: list[TrainingRequest]) -> int:
        """Record a sweep over ``axes`` and put one run per request in line, in order, in one transaction."""
        with transaction(self._connection) as connection:
            created = utc_timestamp()
            sweep_id = connection.execute(
                "INSERT INTO training_sweeps (family, axes, created_at) VALUES (?, ?, ?)",
                (family, json.dumps(axes), created),
            ).lastrowid
            connection.executemany(
                "INSERT INTO training_runs (family, status, parameters, created_at, background, sweep_id) "
                "VALUES (?, 'queued', ?, ?, 1, ?)",
                [(request.family, json.dumps(request.describe()), created, sweep_id) for request in requests],
            )
        return int(sweep_id)

    @reports_sqlite_errors
    def list_sweeps(self) -> list[SweepRecord]:
        """Every sweep, newest first."""
        rows = self._connection.execute("SELECT * FROM training_sweeps ORDER BY id DESC").fetchall()
        return [_sweep_from_row(row) for row in rows]

    @reports_sqlite_errors
    def get_sweep(self, sweep_id: int) -> SweepRecord:
        row = self._connection.execute("SELECT * FROM training_sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"There is no sweep #{sweep_id}; 'python -m digitlab runs sweeps' lists them.")
        return _sweep_from_row(row)

    @reports_sqlite_errors
    def sweep_runs(self, sweep_id: int) -> list[Run]:
        """The runs of one sweep, in the order they were queued."""
        rows = self._connection.execute("SELECT * FROM training_runs WHERE sweep_id = ? ORDER BY id", (sweep_id,))
        return [_run_from_row(row) for row in rows]

    @reports_sqlite_errors
    def claim_next_run(self, limit: int) -> int | None:
        """Give a free training slot to the run first in line and return its id; None when there is no slot or run.

        The run becomes ``running`` without a worker: whoever claimed it starts the worker and records it. The
        count of running runs and the update are one statement in one write transaction, so claims made at once
        by other registries or processes never take the same run, nor more than ``limit`` slots.
        """
        # Pages look every second; a read first means a full machine or an empty line costs no write lock.
        if self.running_count() >= limit or not self._someone_waits():
            return None
        with transaction(self._connection) as connection:
            claimed = connection.execute(
                "UPDATE training_runs SET status = 'running', started_at = ?, stage = ? "
                "WHERE id = (SELECT id FROM training_runs WHERE status = 'queued' AND background = 1 "
                "ORDER BY id LIMIT 1) AND (SELECT COUNT(*) FROM training_runs WHERE status = 'running') < ? "
                "RETURNING id",
                (utc_timestamp(), STARTING_STAGE, limit),
            ).fetchall()
        return int(claimed[0][0]) if claimed else None

    def _someone_waits(self) -> bool:
        waiting = "SELECT 1 FROM training_runs WHERE status = 'queued' AND background = 1 LIMIT 1"
        return self._connection.execute(waiting).fetchone() is not None

    @reports_sqlite_errors
    def record_worker(self, run_id: int, pid: int) -> None:
        """Note the process started for a run, so a worker that dies before it starts is noticed too.

        The worker may have recorded itself first (:meth:`mark_running`); a recorded process is never replaced.
        The run's start becomes now, after the process began: on a busy machine the claim may be many seconds
        older than the process, which would then look like another program that reused the id.
        """
        with transaction(self._connection) as connection:
            connection.execute(
                "UPDATE training_runs SET worker_pid = ?, started_at = ? "
                "WHERE id = ? AND status IN ('queued', 'running') AND worker_pid IS NULL",
                (pid, utc_timestamp(), run_id),
            )

    @reports_sqlite_errors
    def mark_running(self, run_id: int, pid: int, folder: Path) -> None:
        """Take a run for the worker with process id ``pid``; a run cannot be started twice.

        That is a foreground run still queued, or a run from the line that was claimed for a worker and has no
        other worker yet. A run still waiting in line is not taken: it has no slot.
        """
        with transaction(self._connection) as connection:
            updated = connection.execute(
                "UPDATE training_runs SET status = 'running', started_at = ?, worker_pid = ?, folder = ?, "
                "stage = 'loading the data' WHERE id = ? AND ((status = 'queued' AND background = 0) "
                "OR (status = 'running' AND background = 1 AND stage = ? AND (worker_pid IS NULL OR worker_pid = ?)))",
                (utc_timestamp(), pid, str(folder), run_id, STARTING_STAGE, pid),
            ).rowcount
        if not updated:
            run = self.get_run(run_id)
            if run.status == "queued":
                raise DigitlabError(f"Training run #{run_id} is waiting in line for a free training slot.")
            raise DigitlabError(f"Training run #{run_id} is {run.status}, so it cannot be started again.")

    @reports_sqlite_errors
    def record_progress(self, run_id: int, done: int, total: int, details: dict) -> None:
        """Store the worker's progress, and the epoch's figures when ``details`` holds Keras' logs."""
        with transaction(self._connection) as connection:
            stage = details.get("stage") or f"epoch {done} of {total}"
            connection.execute(
                "UPDATE training_runs SET progress_done = ?, progress_total = ?, stage = ? WHERE id = ?",
                (done, total, stage, run_id),
            )
            if "loss" in details:
                connection.execute(
                    "INSERT OR REPLACE INTO training_run_epochs "
                    "(run_id, epoch, loss, accuracy, val_loss, val_accuracy) VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, done, *(_optional_float(details.get(column)) for column in EPOCH_COLUMNS)),
                )

    @reports_sqlite_errors
    def record_stage(self, run_id: int, stage: str) -> None:
        with transaction(self._connection) as connection:
            connection.execute("UPDATE training_runs SET stage = ? WHERE id = ?", (stage, run_id))

    @reports_sqlite_errors
    def request_cancel(self, run_id: int) -> bool:
        """Take a run waiting in line out of it, or ask the run's worker to stop; False when it has finished.

        A run in line has no worker to read the flag, so it ends ``cancelled`` at once, in the same transaction
        that would otherwise lose the race with a claim.
        """
        return bool(self._cancel_unfinished("id", run_id, again=True))

    @reports_sqlite_errors
    def cancel_sweep(self, sweep_id: int) -> int:
        """Cancel every run of a sweep that has not ended; how many it newly cancels.

        One transaction, as :meth:`request_cancel` for one run: the runs in line end ``cancelled`` at once, so a
        worker that frees a slot meanwhile never starts one of them, and the training ones are asked to stop.
        """
        self.get_sweep(sweep_id)
        return self._cancel_unfinished("sweep_id", sweep_id, again=False)

    def _cancel_unfinished(self, column: str, value: int, *, again: bool) -> int:
        """Cancel the unfinished runs whose ``column`` ("id" or "sweep_id") is ``value``, in one transaction.

        Those waiting in line end ``cancelled`` at once; the others are flagged for their workers (``again`` counts
        those already flagged too). Returns how many runs it took out or flagged.
        """
        flagged_before = "" if again else " AND cancel_requested = 0"
        with transaction(self._connection) as connection:
            taken_out = connection.execute(
                "UPDATE training_runs SET status = 'cancelled', cancel_requested = 1, finished_at = ?, error = ?, "
                f"stage = 'cancelled' WHERE {column} = ? AND status = 'queued' AND background = 1",
                (utc_timestamp(), CANCELLED_IN_LINE_MESSAGE, value),
            ).rowcount
            flagged = connection.execute(
                f"UPDATE training_runs SET cancel_requested = 1 WHERE {column} = ?{flagged_before} "
                "AND status IN ('queued', 'running')",
                (value,),
            ).rowcount
        return taken_out + flagged

    @reports_sqlite_errors
    def mark_succeeded(self, run_id: int, outcome: dict[str, Any]) -> None:
        """Record a finished run: data used, metrics, timings and its artefact's path and checksum.

        A run that was judged lost meanwhile loses that error: its worker was alive after all, and finished.
        """
        with transaction(self._connection) as connection:
            connection.execute(
                "UPDATE training_runs SET status = 'succeeded', error = NULL, finished_at = ?, data = ?, metrics = ?, "
                "training_seconds = ?, total_seconds = ?, artifact = ?, sha256 = ?, size_bytes = ?, "
                "stage = 'done', progress_done = progress_total WHERE id = ?",
                (
                    utc_timestamp(),
                    json.dumps(outcome["data"]),
                    json.dumps(outcome["metrics"]),
                    outcome["training_seconds"],
                    outcome["total_seconds"],
                    outcome["artifact"],
                    outcome["sha256"],
                    outcome["size_bytes"],
                    run_id,
                ),
            )

    @reports_sqlite_errors
    def mark_finished_without_model(self, run_id: int, status: str, error: str | None) -> None:
        """Record a run that ended ``failed`` or ``cancelled``, with the sentence that says why."""
        if status not in ("failed", "cancelled"):
            raise ValueError(f"A run without a model is failed or cancelled, not {status!r}.")
        with transaction(self._connection) as connection:
            connection.execute(
                "UPDATE training_runs SET status = ?, finished_at = ?, error = ?, stage = ? WHERE id = ?",
                (status, utc_timestamp(), error, status, run_id),
            )

    @reports_sqlite_errors
    def mark_lost_runs(self) -> list[int]:
        """Mark unfinished runs that no process will finish as failed, so none stays unfinished forever; return them.

        That is a run whose worker process no longer exists, and a foreground run still queued without a recorded
        process ``UNSTARTED_GRACE_SECONDS`` after it was created; a younger one may be starting. A run claimed
        from the line whose worker was never recorded that long after (whoever claimed it died before starting
        it) goes back to the head of the line instead: no worker trained it.
        """
        moment = utc_now()
        lost = {}
        for run in self.list_runs(ACTIVE):
            if _claimed_without_worker(run):
                if _older_than_grace(run.started_at, moment):
                    self._put_back_in_line(run.id)
            elif _never_started(run, moment):
                lost[run.id] = UNSTARTED_MESSAGE
            elif (run.status == "running" or run.worker_pid) and not process_is_alive(run.worker_pid, run.started_at):
                lost[run.id] = LOST_WORKER_MESSAGE
        for run_id, message in lost.items():
            with transaction(self._connection) as connection:
                connection.execute(
                    "UPDATE training_runs SET status = 'failed', finished_at = ?, error = ?, stage = 'failed' "
                    "WHERE id = ? AND status IN ('queued', 'running')",
                    (utc_timestamp(), message, run_id),
                )
        return list(lost)

    def _put_back_in_line(self, run_id: int) -> None:
        with transaction(self._connection) as connection:
            connection.execute(
                "UPDATE training_runs SET status = 'queued', started_at = NULL, stage = NULL "
                "WHERE id = ? AND status = 'running' AND worker_pid IS NULL AND background = 1",
                (run_id,),
            )

    @reports_sqlite_errors
    def roll_back_interrupted_write(self) -> None:
        """Drop a write that an interrupt cut off between its BEGIN and its error handling.

        The open transaction would make the next write (recording how the run ended) fail; it only held progress.
        """
        if self._connection.in_transaction:
            self._connection.execute("ROLLBACK")


def summary_row(run: Run) -> dict[str, Any]:
    """A run's headline figures for a table."""
    test = run.metrics.get("test", {})
    drawings = run.metrics.get("drawings", {})
    return {
        "run": run.id,
        "family": run.family,
        "status": run.status,
        "train_size": run.train_size,
        "epochs": run.parameters.get("epochs"),
        "augment": run.parameters.get("augment"),
        "drawings_in_training": run.data.get("drawings_in_training", 0),
        "accuracy": test.get("accuracy"),
        "errors": test.get("errors"),
        "drawings_accuracy": drawings.get("accuracy"),
        "training_seconds": run.training_seconds,
        "created_at": run.created_at,
        "error": run.error,
    }


def learning_curve_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """Test accuracy and training time against training-set size, one row per succeeded run, by family and size.

    Only runs with default-like settings are comparable along one curve, so each
    row carries the settings that distinguish it and the chart groups by them.
    """
    rows = []
    for run in runs:
        if run.status != "succeeded" or run.train_size is None:
            continue
        rows.append(
            {
                "run": run.id,
                "family": run.family,
                "curve": f"{run.family.upper()} ({describe_settings(run.parameters)})",
                "train_size": int(run.train_size),
                "accuracy": float(run.metrics["test"]["accuracy"]),
                "training_seconds": float(run.training_seconds or 0.0),
            }
        )
    return sorted(rows, key=lambda row: (row["curve"], row["train_size"], row["run"]))
