"""Saved drawings: what users drew or uploaded, the digit they say it is, and what each model read.

Each drawing keeps its original image (PNG), the 28x28 input the models received, the user's label,
the time, the preprocessing version and, per model, the digit read, its confidence and probabilities
and the model's SHA-256 from the manifest. The store lives in the lab's SQLite database
(``digitlab.lab.database``): every write is one transaction, so a drawing is saved with all of its
predictions or not at all, and a :class:`FeedbackStore` serialises its threads with a lock, so one
store can be shared by every session of the dashboard.
"""

import csv
import gzip
import io
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from digitlab.atomic import write_atomically
from digitlab.clock import utc_timestamp
from digitlab.data.idx import idx_bytes
from digitlab.data.mnist import IMAGE_SIDE
from digitlab.errors import DigitlabError
from digitlab.formatting import markdown_table
from digitlab.imaging.decode import load_image
from digitlab.imaging.preprocess import PREPROCESS_VERSION
from digitlab.lab.database import Schema, connect, reports_sqlite_errors, transaction
from digitlab.models.base import Reading
from digitlab.settings import database_path

SOURCES = ("drawn", "uploaded")
DIGITS = tuple(range(10))
# Uploaded photos can be huge; their saved copy is shrunk to this longer side, plenty to look at or redo a crop.
ORIGINAL_MAX_SIDE = 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A filter value meaning "misread by at least one model".
ANY_MODEL = "*"
IDX_IMAGES_NAME = "feedback-images-idx3-ubyte.gz"
IDX_LABELS_NAME = "feedback-labels-idx1-ubyte.gz"
CSV_NAME = "feedback.csv"
EXPORT_FORMATS = ("idx", "csv")
# Drawings are timed to the millisecond, so several saved within one second still show their order.
TIMESPEC = "milliseconds"

FEEDBACK_SCHEMA = Schema(
    "feedback",
    (
        """
        CREATE TABLE feedback_drawings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            saved_at TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('drawn', 'uploaded')),
            label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
            original_png BLOB NOT NULL,
            model_input BLOB NOT NULL CHECK (length(model_input) = 784),
            preprocess_version INTEGER NOT NULL,
            relabelled_at TEXT
        );
        CREATE INDEX feedback_drawings_by_label ON feedback_drawings (label);
        CREATE TABLE feedback_predictions (
            drawing_id INTEGER NOT NULL REFERENCES feedback_drawings (id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            model_version TEXT NOT NULL,
            digit INTEGER NOT NULL CHECK (digit BETWEEN 0 AND 9),
            confidence REAL NOT NULL CHECK (confidence BETWEEN 0 AND 1),
            probabilities TEXT NOT NULL,
            PRIMARY KEY (drawing_id, model)
        );
        """,
    ),
)


class DrawingNotFoundError(DigitlabError):
    """No saved drawing has this id (it may have been deleted in another session)."""


class ExportError(DigitlabError):
    """The export folder cannot be created or written."""


@dataclass(frozen=True)
class SavedPrediction:
    digit: int
    confidence: float
    model_version: str
    probabilities: tuple[float, ...]


@dataclass(frozen=True)
class SavedDrawing:
    """One saved drawing without its original image, which :meth:`FeedbackStore.original_png` reads on demand."""

    id: int
    saved_at: str
    source: str
    label: int
    model_input: np.ndarray
    preprocess_version: int
    relabelled_at: str | None
    predictions: dict[str, SavedPrediction] = field(default_factory=dict)

    def misread_by(self) -> list[str]:
        return [model for model, prediction in self.predictions.items() if prediction.digit != self.label]


@dataclass(frozen=True)
class DrawingFilter:
    """Which drawings to list: empty tuples and None keep everything."""

    labels: tuple[int, ...] = ()
    sources: tuple[str, ...] = ()
    # A model's name keeps the drawings it misread; ANY_MODEL keeps those some model misread.
    misread_by: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition on ``d`` (feedback_drawings) and its parameters."""
        clauses, parameters = ["1"], []
        if self.labels:
            clauses.append(f"d.label IN ({', '.join('?' * len(self.labels))})")
            parameters.extend(int(label) for label in self.labels)
        if self.sources:
            clauses.append(f"d.source IN ({', '.join('?' * len(self.sources))})")
            parameters.extend(self.sources)
        if self.misread_by is not None:
            misread = "SELECT 1 FROM feedback_predictions p WHERE p.drawing_id = d.id AND p.digit != d.label"
            if self.misread_by == ANY_MODEL:
                clauses.append(f"EXISTS ({misread})")
            else:
                clauses.append(f"EXISTS ({misread} AND p.model = ?)")
                parameters.append(self.misread_by)
        return " AND ".join(clauses), parameters


@dataclass(frozen=True)
class ModelAccuracy:
    """How one model did on the saved drawings; ``versions`` counts the distinct model files involved."""

    model: str
    drawings: int
    correct: int
    versions: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.drawings if self.drawings else 0.0


def original_png(source: np.ndarray | bytes | str | Path) -> bytes:
    """PNG bytes of what the user gave: a canvas array as it is, an uploaded file shrunk to ORIGINAL_MAX_SIDE."""
    if isinstance(source, np.ndarray):
        array = source
        if array.dtype == np.bool_:
            array = array.astype(np.uint8) * 255
        image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    else:
        image = load_image(source)
        image.thumbnail((ORIGINAL_MAX_SIDE, ORIGINAL_MAX_SIDE))
        if image.mode not in ("L", "LA", "RGB", "RGBA"):
            image = image.convert("RGBA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _checked_label(label: Any) -> int:
    if isinstance(label, bool) or not isinstance(label, int | np.integer) or not 0 <= label <= 9:
        raise ValueError(f"A label is a digit from 0 to 9, got {label!r}.")
    return int(label)


def _checked_input(model_input: np.ndarray) -> bytes:
    array = np.asarray(model_input)
    if array.shape != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"The model input must be {IMAGE_SIDE}x{IMAGE_SIDE}, got shape {array.shape}.")
    if array.dtype != np.uint8:
        raise ValueError(f"The model input must hold uint8 pixels (as preprocess returns), got {array.dtype}.")
    return array.tobytes()


def _checked_prediction(prediction: Reading, versions: Mapping[str, str]) -> tuple:
    model = str(prediction.model)
    digit = _checked_label(prediction.digit)
    confidence = float(prediction.confidence)
    probabilities = [float(value) for value in prediction.probabilities]
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"{model}'s confidence must be between 0 and 1, got {confidence}.")
    if probabilities and len(probabilities) != 10:
        raise ValueError(f"{model} must give ten probabilities, got {len(probabilities)}.")
    if model not in versions:
        raise ValueError(f"No version (the manifest's SHA-256) was given for the model {model!r}.")
    return model, str(versions[model]), digit, confidence, json.dumps(probabilities)


def _row_to_drawing(row, predictions: dict[str, SavedPrediction]) -> SavedDrawing:
    return SavedDrawing(
        id=row["id"],
        saved_at=row["saved_at"],
        source=row["source"],
        label=row["label"],
        model_input=np.frombuffer(row["model_input"], dtype=np.uint8).reshape(IMAGE_SIDE, IMAGE_SIDE).copy(),
        preprocess_version=row["preprocess_version"],
        relabelled_at=row["relabelled_at"],
        predictions=predictions,
    )


@contextmanager
def _read_snapshot(connection: sqlite3.Connection) -> Iterator[None]:
    """One read transaction: every query inside it sees the database as it was at the first one."""
    if connection.in_transaction:
        # Already inside one (export_files reads the CSV within its snapshot): that snapshot holds.
        yield
        return
    connection.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        if connection.in_transaction:
            connection.execute("COMMIT")


class FeedbackStore:
    """The saved drawings in one database file; safe to share between threads."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else database_path()
        self._connection = connect(self.path, [FEEDBACK_SCHEMA])
        # One connection cannot hold two transactions, so threads sharing the store take turns.
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> "FeedbackStore":
        return self

    def __exit__(self, *exception) -> None:
        self.close()

    # Writing.

    @reports_sqlite_errors
    def save(
        self,
        *,
        original: bytes,
        model_input: np.ndarray,
        label: int,
        predictions: Sequence[Reading],
        model_versions: Mapping[str, str],
        source: str = "drawn",
        preprocess_version: int = PREPROCESS_VERSION,
    ) -> int:
        """Save one drawing with every model's reading in one transaction; returns its id once committed.

        ``original`` is PNG bytes (see :func:`original_png`); ``predictions`` are the models' readings, as
        ``digitlab.recognise.predict_digit`` returns them.
        """
        label = _checked_label(label)
        pixels = _checked_input(model_input)
        if source not in SOURCES:
            raise ValueError(f"The source must be one of {SOURCES}, got {source!r}.")
        if not isinstance(original, bytes) or not original.startswith(PNG_SIGNATURE):
            raise ValueError("The original image must be PNG bytes; encode it with digitlab.lab.feedback.original_png.")
        rows = [_checked_prediction(prediction, model_versions) for prediction in predictions]
        if len({row[0] for row in rows}) != len(rows):
            raise ValueError("Each model may give only one prediction per drawing.")
        with self._lock, transaction(self._connection) as connection:
            cursor = connection.execute(
                "INSERT INTO feedback_drawings (saved_at, source, label, original_png, model_input, preprocess_version)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (utc_timestamp(TIMESPEC), source, label, original, pixels, int(preprocess_version)),
            )
            drawing_id = int(cursor.lastrowid)
            connection.executemany(
                "INSERT INTO feedback_predictions (drawing_id, model, model_version, digit, confidence, probabilities)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(drawing_id, *row) for row in rows],
            )
        return drawing_id

    @reports_sqlite_errors
    def relabel(self, drawing_id: int, label: int) -> None:
        label = _checked_label(label)
        with self._lock, transaction(self._connection) as connection:
            changed = connection.execute(
                "UPDATE feedback_drawings SET label = ?, relabelled_at = ? WHERE id = ?",
                (label, utc_timestamp(TIMESPEC), drawing_id),
            ).rowcount
            if not changed:
                raise DrawingNotFoundError(f"There is no saved drawing #{drawing_id}; it may have been deleted.")

    @reports_sqlite_errors
    def delete(self, drawing_id: int) -> None:
        with self._lock, transaction(self._connection) as connection:
            if not connection.execute("DELETE FROM feedback_drawings WHERE id = ?", (drawing_id,)).rowcount:
                raise DrawingNotFoundError(
                    f"There is no saved drawing #{drawing_id}; it may have been deleted already."
                )

    # Reading.

    @reports_sqlite_errors
    def count(self, filters: DrawingFilter = DrawingFilter()) -> int:
        condition, parameters = filters.where()
        with self._lock:
            query = f"SELECT COUNT(*) FROM feedback_drawings d WHERE {condition}"
            return int(self._connection.execute(query, parameters).fetchone()[0])

    @reports_sqlite_errors
    def drawings(
        self, filters: DrawingFilter = DrawingFilter(), *, limit: int | None = None, offset: int = 0, newest_first=True
    ) -> list[SavedDrawing]:
        """The drawings that pass ``filters``, newest first by default, with every model's reading."""
        condition, parameters = filters.where()
        order = "DESC" if newest_first else "ASC"
        query = (
            "SELECT id, saved_at, source, label, model_input, preprocess_version, relabelled_at "
            f"FROM feedback_drawings d WHERE {condition} ORDER BY id {order} LIMIT ? OFFSET ?"
        )
        with self._lock:
            rows = self._connection.execute(query, [*parameters, -1 if limit is None else limit, offset]).fetchall()
            predictions = self._predictions([row["id"] for row in rows])
        return [_row_to_drawing(row, predictions.get(row["id"], {})) for row in rows]

    def _predictions(self, drawing_ids: list[int]) -> dict[int, dict[str, SavedPrediction]]:
        found: dict[int, dict[str, SavedPrediction]] = {}
        # SQLite limits the number of parameters in one statement, so long lists are read in chunks.
        for start in range(0, len(drawing_ids), 500):
            chunk = drawing_ids[start : start + 500]
            rows = self._connection.execute(
                "SELECT drawing_id, model, model_version, digit, confidence, probabilities FROM feedback_predictions "
                f"WHERE drawing_id IN ({', '.join('?' * len(chunk))}) ORDER BY rowid",
                chunk,
            )
            for row in rows:
                found.setdefault(row["drawing_id"], {})[row["model"]] = SavedPrediction(
                    digit=row["digit"],
                    confidence=row["confidence"],
                    model_version=row["model_version"],
                    probabilities=tuple(json.loads(row["probabilities"])),
                )
        return found

    @reports_sqlite_errors
    def original_png(self, drawing_id: int) -> bytes:
        with self._lock:
            row = self._connection.execute(
                "SELECT original_png FROM feedback_drawings WHERE id = ?", (drawing_id,)
            ).fetchone()
        if row is None:
            raise DrawingNotFoundError(f"There is no saved drawing #{drawing_id}; it may have been deleted.")
        return bytes(row[0])

    @reports_sqlite_errors
    def label_counts(self, filters: DrawingFilter = DrawingFilter()) -> np.ndarray:
        """How many drawings that pass ``filters`` carry each label, indexed by digit."""
        condition, parameters = filters.where()
        counts = np.zeros(10, dtype=np.int64)
        with self._lock:
            rows = self._connection.execute(
                f"SELECT label, COUNT(*) FROM feedback_drawings d WHERE {condition} GROUP BY label", parameters
            )
            for label, count in rows:
                counts[label] = count
        return counts

    @reports_sqlite_errors
    def models(self) -> list[str]:
        """Every model with a reading of some saved drawing, in the order they were first saved."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT model FROM feedback_predictions GROUP BY model ORDER BY MIN(rowid)"
            ).fetchall()
        return [row[0] for row in rows]

    @reports_sqlite_errors
    def model_accuracy(self, filters: DrawingFilter = DrawingFilter()) -> list[ModelAccuracy]:
        """Each model's accuracy on the drawings that pass ``filters``, against the users' labels."""
        condition, parameters = filters.where()
        with self._lock:
            rows = self._connection.execute(
                "SELECT p.model, COUNT(*), SUM(p.digit = d.label), COUNT(DISTINCT p.model_version) "
                "FROM feedback_predictions p JOIN feedback_drawings d ON d.id = p.drawing_id "
                f"WHERE {condition} GROUP BY p.model ORDER BY MIN(p.rowid)",
                parameters,
            ).fetchall()
        return [
            ModelAccuracy(model, int(count), int(correct), int(versions)) for model, count, correct, versions in rows
        ]

    @reports_sqlite_errors
    def confusion(self, model: str, filters: DrawingFilter = DrawingFilter()) -> np.ndarray:
        """A 10x10 count matrix for ``model``: rows are the users' labels, columns what the model read."""
        condition, parameters = filters.where()
        matrix = np.zeros((10, 10), dtype=np.int64)
        with self._lock:
            rows = self._connection.execute(
                "SELECT d.label, p.digit, COUNT(*) FROM feedback_predictions p "
                f"JOIN feedback_drawings d ON d.id = p.drawing_id WHERE p.model = ? AND {condition} "
                "GROUP BY d.label, p.digit",
                [model, *parameters],
            )
            for label, digit, count in rows:
                matrix[label, digit] = count
        return matrix

    @reports_sqlite_errors
    def dataset(self, filters: DrawingFilter = DrawingFilter()) -> tuple[np.ndarray, np.ndarray]:
        """The 28x28 inputs (uint8, white ink on black as in MNIST) and int64 labels, oldest first."""
        condition, parameters = filters.where()
        with self._lock:
            rows = self._connection.execute(
                f"SELECT model_input, label FROM feedback_drawings d WHERE {condition} ORDER BY id", parameters
            ).fetchall()
        images = np.zeros((len(rows), IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
        labels = np.zeros(len(rows), dtype=np.int64)
        for position, (pixels, label) in enumerate(rows):
            images[position] = np.frombuffer(pixels, dtype=np.uint8).reshape(IMAGE_SIDE, IMAGE_SIDE)
            labels[position] = label
        return images, labels

    # Exporting.

    def idx_files(self, filters: DrawingFilter = DrawingFilter()) -> dict[str, bytes]:
        """MNIST-style gzipped IDX files of the images and labels, by file name."""
        images, labels = self.dataset(filters)
        return {
            IDX_IMAGES_NAME: gzip.compress(idx_bytes(images), mtime=0),
            IDX_LABELS_NAME: gzip.compress(idx_bytes(labels.astype(np.uint8)), mtime=0),
        }

    @reports_sqlite_errors
    def csv_text(self, filters: DrawingFilter = DrawingFilter()) -> str:
        """One row per drawing: its details, each model's reading, then the 784 pixels (as Kaggle's MNIST CSV)."""
        # The drawings and the model columns must come from the same state of the database.
        with self._lock, _read_snapshot(self._connection):
            drawings = self.drawings(filters, newest_first=False)
            models = self.models()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            ["id", "saved_at", "source", "label", "preprocess_version"]
            + [f"{model}_{part}" for model in models for part in ("digit", "confidence", "version")]
            + [f"pixel{index}" for index in range(IMAGE_SIDE * IMAGE_SIDE)]
        )
        for drawing in drawings:
            readings = []
            for model in models:
                prediction = drawing.predictions.get(model)
                readings += (
                    ["", "", ""]
                    if prediction is None
                    else [prediction.digit, f"{prediction.confidence:.6f}", prediction.model_version]
                )
            writer.writerow(
                [drawing.id, drawing.saved_at, drawing.source, drawing.label, drawing.preprocess_version]
                + readings
                + drawing.model_input.ravel().tolist()
            )
        return buffer.getvalue()

    @reports_sqlite_errors
    def export_files(
        self, filters: DrawingFilter = DrawingFilter(), formats: Sequence[str] = EXPORT_FORMATS
    ) -> dict[str, bytes]:
        """The gzipped IDX files and/or the CSV of the drawings that pass ``filters``, by file name."""
        unknown = set(formats) - set(EXPORT_FORMATS)
        if unknown:
            raise ValueError(f"Unknown export formats {sorted(unknown)}; choose from {EXPORT_FORMATS}.")
        files = {}
        # One read transaction, so a drawing saved meanwhile lands in both files or in neither.
        with self._lock, _read_snapshot(self._connection):
            if "idx" in formats:
                files |= self.idx_files(filters)
            if "csv" in formats:
                files[CSV_NAME] = self.csv_text(filters).encode()
        return files

    def export(
        self, folder: str | Path, formats: Sequence[str] = EXPORT_FORMATS, filters: DrawingFilter = DrawingFilter()
    ) -> list[Path]:
        """Write the drawings into ``folder`` as MNIST IDX files and/or a CSV; returns the paths written."""
        files = self.export_files(filters, formats)
        folder = Path(folder)
        written = []
        try:
            for name, payload in files.items():
                write_atomically(folder / name, payload)
                written.append(folder / name)
        except OSError as error:
            raise ExportError(f"Cannot write the export into {folder}: {error}.") from error
        return written


def statistics(store: FeedbackStore, filters: DrawingFilter = DrawingFilter()) -> dict[str, Any]:
    """Counts per digit, each model's accuracy and confusion matrix: what ``feedback stats`` prints."""
    return {
        "database": str(store.path),
        "drawings": store.count(filters),
        "filtered": filters != DrawingFilter(),
        "per_digit": store.label_counts(filters).tolist(),
        "models": [
            {
                "model": row.model,
                "drawings": row.drawings,
                "correct": row.correct,
                "accuracy": row.accuracy,
                "versions": row.versions,
                "confusion_matrix": store.confusion(row.model, filters).tolist(),
            }
            for row in store.model_accuracy(filters)
        ],
    }


def empty_statistics(path: str | Path, filters: DrawingFilter = DrawingFilter()) -> dict[str, Any]:
    """The statistics of a database that does not exist yet, laid out as :func:`statistics` lays them out."""
    return {
        "database": str(path),
        "drawings": 0,
        "filtered": filters != DrawingFilter(),
        "per_digit": [0] * len(DIGITS),
        "models": [],
    }


def statistics_text(report: dict[str, Any], confusion: bool = False) -> str:
    """The statistics as plain text: a sentence, the count per digit, then a table of the models."""
    if not report["drawings"] and report["filtered"]:
        return f"No saved drawing in {report['database']} matches these filters."
    if not report["drawings"]:
        return f"No saved drawings in {report['database']} yet: save some from the dashboard's Draw page."
    matching = " matching the filters" if report["filtered"] else ""
    lines = [f"{report['drawings']:,} saved drawings{matching} in {report['database']}."]
    lines.append("Per digit: " + ", ".join(f"{digit}: {count}" for digit, count in enumerate(report["per_digit"])))
    rows = [
        (row["model"], f"{row['accuracy']:.2%}", f"{row['correct']}/{row['drawings']}", row["versions"])
        for row in report["models"]
    ]
    lines += ["", markdown_table(["model", "accuracy", "correct", "model versions"], rows)]
    if confusion:
        for row in report["models"]:
            lines += ["", f"{row['model']} (rows: your label, columns: the model's reading)"]
            header = "    " + " ".join(f"{digit:>4}" for digit in DIGITS)
            lines.append(header)
            lines += [
                f"{label:>3} " + " ".join(f"{count:>4}" for count in counts)
                for label, counts in enumerate(row["confusion_matrix"])
            ]
    return "\n".join(lines)


def open_store(path: str | Path | None = None) -> FeedbackStore:
    """The feedback store at ``path`` (default: ``$DIGITLAB_DB``), created or migrated as needed."""
    return FeedbackStore(path)


def load_labelled_drawings(path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The users' saved 28x28 inputs (uint8, MNIST's white ink on black) and their int64 labels, for training.

    A database that does not exist yet holds no drawings: empty arrays are returned and no file is created.
    """
    path = Path(path) if path is not None else database_path()
    if not path.exists():
        return np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    with FeedbackStore(path) as store:
        return store.dataset()
