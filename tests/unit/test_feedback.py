"""The feedback store on real SQLite files: saving, filters, relabelling, statistics, export, and durability.

The durability tests are real: several processes and threads write to one file at once, and a writer
process is killed with SIGKILL in the middle of its loop; afterwards SQLite's integrity check must pass
and every drawing whose id the writer printed (after its commit returned) must be there, whole.
"""

import gzip
import io
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab import settings
from digitlab.data.idx import idx_bytes, read_idx
from digitlab.imaging.preprocess import PREPROCESS_VERSION
from digitlab.lab.database import DatabaseError, schema_version
from digitlab.lab.feedback import (
    ANY_MODEL,
    CSV_NAME,
    FEEDBACK_SCHEMA,
    IDX_IMAGES_NAME,
    IDX_LABELS_NAME,
    DrawingFilter,
    DrawingNotFoundError,
    FeedbackStore,
    load_labelled_drawings,
    original_png,
)
from tests.support import PROJECT_ROOT, VERSIONS, model_input, reading, save


@pytest.fixture
def store(tmp_path):
    with FeedbackStore(tmp_path / "lab.sqlite3") as opened:
        yield opened


def test_a_saved_drawing_keeps_everything_it_was_saved_with(store, tmp_path):
    canvas = np.zeros((60, 50, 4), dtype=np.uint8)
    canvas[5:55, 20:30] = (255, 255, 255, 255)
    pixels = model_input(3)

    drawing_id = store.save(
        original=original_png(canvas),
        model_input=pixels,
        label=7,
        predictions=[reading("svm", 1, 0.6), reading("cnn", 7, 0.99)],
        model_versions=VERSIONS,
    )

    (drawing,) = store.drawings()
    assert drawing.id == drawing_id and drawing.label == 7 and drawing.source == "drawn"
    np.testing.assert_array_equal(drawing.model_input, pixels)
    assert drawing.preprocess_version == PREPROCESS_VERSION
    assert drawing.predictions["svm"].digit == 1 and drawing.predictions["svm"].confidence == pytest.approx(0.6)
    assert drawing.predictions["cnn"].model_version == "c" * 64
    assert drawing.predictions["cnn"].probabilities[7] == pytest.approx(0.99)
    assert drawing.misread_by() == ["svm"]
    assert drawing.saved_at.endswith("+00:00")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(store.original_png(drawing_id)))), canvas)
    # The schema is recorded, and the database is in WAL mode.
    assert schema_version(sqlite3.connect(tmp_path / "lab.sqlite3"), "feedback") == FEEDBACK_SCHEMA.version
    assert sqlite3.connect(tmp_path / "lab.sqlite3").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_uploaded_original_is_stored_as_a_png_no_larger_than_the_limit(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 1500), "white").save(buffer, format="JPEG")

    stored = Image.open(io.BytesIO(original_png(buffer.getvalue())))

    assert stored.format == "PNG" and stored.size == (1024, 512)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"label": 10}, "digit from 0 to 9"),
        ({"label": True}, "digit from 0 to 9"),
        ({"model_input": np.zeros((28, 27), np.uint8)}, "must be 28x28"),
        ({"model_input": np.zeros((28, 28), np.float32)}, "uint8"),
        ({"source": "camera"}, "source must be one of"),
        ({"original": b"GIF89a"}, "PNG bytes"),
        ({"model_versions": {"svm": "a" * 64}}, "No version"),
        ({"predictions": [reading("svm", 1), reading("svm", 2)]}, "only one prediction"),
    ],
)
def test_bad_drawings_are_refused_and_nothing_is_written(store, change, message):
    arguments = {
        "original": original_png(np.zeros((8, 8), np.uint8)),
        "model_input": model_input(0),
        "label": 1,
        "predictions": [reading("svm", 1), reading("cnn", 1)],
        "model_versions": VERSIONS,
        "source": "drawn",
    } | change
    with pytest.raises(ValueError, match=message):
        store.save(**arguments)
    assert store.count() == 0


def test_filters_select_by_label_source_and_misreading_model(store):
    first = save(store, label=1, svm=1, cnn=1)
    second = save(store, label=7, svm=1, cnn=7, source="uploaded")
    third = save(store, label=7, svm=7, cnn=2)

    assert [drawing.id for drawing in store.drawings()] == [third, second, first]
    assert [drawing.id for drawing in store.drawings(DrawingFilter(labels=(7,)))] == [third, second]
    assert [drawing.id for drawing in store.drawings(DrawingFilter(sources=("uploaded",)))] == [second]
    assert [drawing.id for drawing in store.drawings(DrawingFilter(misread_by="svm"))] == [second]
    assert [drawing.id for drawing in store.drawings(DrawingFilter(misread_by=ANY_MODEL))] == [third, second]
    assert store.count(DrawingFilter(labels=(1, 7), misread_by="cnn")) == 1
    assert [drawing.id for drawing in store.drawings(limit=1, offset=1)] == [second]


def test_relabel_and_delete_change_the_statistics(store):
    first = save(store, label=1, svm=1, cnn=7)
    second = save(store, label=7, svm=1, cnn=7)

    accuracy = {row.model: row for row in store.model_accuracy()}
    assert (accuracy["svm"].correct, accuracy["svm"].drawings, accuracy["cnn"].accuracy) == (1, 2, 0.5)
    assert store.confusion("cnn")[1, 7] == 1 and store.confusion("cnn").sum() == 2

    store.relabel(first, 7)
    (relabelled,) = store.drawings(DrawingFilter(labels=(7,)), limit=1, offset=1)
    assert relabelled.id == first and relabelled.relabelled_at is not None
    assert {row.model: row.correct for row in store.model_accuracy()} == {"svm": 0, "cnn": 2}

    store.delete(second)
    assert store.count() == 1
    assert store.label_counts().tolist() == [0] * 7 + [1, 0, 0]
    # The deleted drawing's predictions went with it.
    assert sum(row.drawings for row in store.model_accuracy()) == 2
    with pytest.raises(DrawingNotFoundError, match="no saved drawing #"):
        store.relabel(second, 3)
    with pytest.raises(DrawingNotFoundError):
        store.delete(second)
    with pytest.raises(ValueError, match="digit from 0 to 9"):
        store.relabel(first, -1)


def test_load_labelled_drawings_returns_mnist_shaped_arrays(tmp_path):
    path = tmp_path / "lab.sqlite3"
    images, labels = load_labelled_drawings(path)
    assert images.shape == (0, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (0,) and labels.dtype == np.int64
    assert not path.exists(), "reading a database that does not exist must not create one"

    with FeedbackStore(path) as store:
        save(store, label=4, svm=4, cnn=4, seed=1)
        save(store, label=9, svm=4, cnn=9, seed=2)

    images, labels = load_labelled_drawings(path)
    assert images.shape == (2, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0], model_input(1))
    assert labels.tolist() == [4, 9] and labels.dtype == np.int64


def test_load_labelled_drawings_reads_the_configured_database(tmp_path, monkeypatch):
    path = tmp_path / "configured.sqlite3"
    monkeypatch.setenv("DIGITLAB_DB", str(path))
    with FeedbackStore() as store:
        save(store, label=2, svm=2, cnn=2)

    assert load_labelled_drawings()[1].tolist() == [2]


def test_a_damaged_database_is_refused_and_left_as_it_was(tmp_path):
    path = tmp_path / "lab.sqlite3"
    damaged = b"not a database " * 200
    path.write_bytes(damaged)

    with pytest.raises(DatabaseError, match="damaged or is not a digitlab database"):
        FeedbackStore(path)
    with pytest.raises(DatabaseError):
        load_labelled_drawings(path)
    assert path.read_bytes() == damaged


def test_reopening_keeps_the_drawings_and_runs_no_migration_twice(tmp_path):
    path = tmp_path / "lab.sqlite3"
    with FeedbackStore(path) as store:
        first = save(store, label=5, svm=5, cnn=5)
    with FeedbackStore(path) as store:
        assert [drawing.id for drawing in store.drawings()] == [first]
        # AUTOINCREMENT: a deleted drawing's id is never handed out again, so exported ids stay unique.
        store.delete(first)
        assert save(store, label=5, svm=5, cnn=5) == first + 1
    assert schema_version(sqlite3.connect(path), "feedback") == 1


def test_sqlite_failures_become_one_database_error_sentence(tmp_path):
    store = FeedbackStore(tmp_path / "lab.sqlite3")
    store.close()

    with pytest.raises(DatabaseError, match="could not be used"):
        store.count()
    with pytest.raises(DatabaseError, match="could not be used"):
        save(store, label=1, svm=1, cnn=1)


# IDX and CSV export.


@pytest.mark.parametrize(
    "array",
    [
        np.arange(3 * 28 * 28, dtype=np.uint64).reshape(3, 28, 28).astype(np.uint8),
        np.array([3, 1, 4, 1, 5], dtype=np.uint8),
    ],
    ids=["images", "labels"],
)
def test_idx_files_are_read_back_by_the_mnist_reader(array):
    np.testing.assert_array_equal(read_idx(idx_bytes(array)), array)


def test_idx_encoding_matches_the_published_layout():
    assert idx_bytes(np.array([7, 2], dtype=np.uint8)) == bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 2])
    with pytest.raises(ValueError, match="uint8"):
        idx_bytes(np.array([1, 2]))


def test_export_writes_idx_and_csv_that_hold_the_drawings(store, tmp_path):
    save(store, label=3, svm=3, cnn=5, seed=10)
    save(store, label=8, svm=8, cnn=8, seed=11, source="uploaded")

    written = store.export(tmp_path / "out")

    assert sorted(path.name for path in written) == sorted([IDX_IMAGES_NAME, IDX_LABELS_NAME, CSV_NAME])
    images = read_idx(gzip.decompress((tmp_path / "out" / IDX_IMAGES_NAME).read_bytes()))
    labels = read_idx(gzip.decompress((tmp_path / "out" / IDX_LABELS_NAME).read_bytes()))
    np.testing.assert_array_equal(images, np.stack([model_input(10), model_input(11)]))
    assert labels.tolist() == [3, 8]
    assert store.idx_files()[IDX_IMAGES_NAME] == (tmp_path / "out" / IDX_IMAGES_NAME).read_bytes()

    header, *rows = (tmp_path / "out" / CSV_NAME).read_text().splitlines()
    columns = header.split(",")
    assert columns[:8] == ["id", "saved_at", "source", "label", "preprocess_version", "svm_digit"] + [
        "svm_confidence",
        "svm_version",
    ]
    assert columns[-1] == "pixel783" and len(columns) == 5 + 6 + 784
    first = rows[0].split(",")
    assert first[3] == "3" and first[columns.index("cnn_digit")] == "5"
    assert [int(value) for value in first[-784:]] == model_input(10).ravel().tolist()
    with pytest.raises(ValueError, match="Unknown export formats"):
        store.export(tmp_path / "out", formats=("parquet",))


def test_export_files_agree_when_a_drawing_is_saved_while_they_are_read(store, tmp_path, monkeypatch):
    save(store, label=3, svm=3, cnn=3, seed=20)
    read_dataset = FeedbackStore.dataset

    def dataset_then_another_save(self, *arguments, **keywords):
        # Another process saves right after the IDX data is read and before the CSV is.
        result = read_dataset(self, *arguments, **keywords)
        with FeedbackStore(store.path) as other:
            save(other, label=4, svm=4, cnn=4, seed=21)
        return result

    monkeypatch.setattr(FeedbackStore, "dataset", dataset_then_another_save)
    store.export(tmp_path / "out")

    labels = read_idx(gzip.decompress((tmp_path / "out" / IDX_LABELS_NAME).read_bytes()))
    rows = (tmp_path / "out" / CSV_NAME).read_text().splitlines()[1:]
    assert [row.split(",")[3] for row in rows] == [str(label) for label in labels.tolist()] == ["3"]
    assert store.count() == 2


def test_cli_reading_commands_leave_a_missing_database_uncreated(tmp_path, monkeypatch, capsys):
    from digitlab.cli import main

    missing = tmp_path / "data" / "digitlab.sqlite3"
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(missing))

    assert main(["feedback", "stats"]) == 0
    assert "No saved drawings" in capsys.readouterr().out
    assert main(["feedback", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["drawings"] == 0
    assert main(["feedback", "export", "--out", str(tmp_path / "out")]) == 1
    assert "no saved drawings" in capsys.readouterr().err
    assert not missing.parent.exists(), "looking must not create the database or its folder"
    assert not (tmp_path / "out").exists()


# Durability: concurrent writers and a writer killed mid-loop.

# A child process that saves drawings in a loop and prints each id once its commit has returned.
WRITER = """
import sys
import numpy as np
from digitlab.lab.feedback import FeedbackStore, original_png
from digitlab.models.base import Reading

path, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = FeedbackStore(path)
rng = np.random.default_rng(seed)
canvas = original_png(rng.integers(0, 256, size=(280, 280, 4), dtype=np.uint8))
versions = {"svm": "a" * 64, "cnn": "c" * 64}
written = 0
while count == 0 or written < count:
    digit = int(rng.integers(10))
    drawing_id = store.save(
        original=canvas,
        model_input=rng.integers(0, 256, size=(28, 28), dtype=np.uint8),
        label=digit,
        predictions=[
            Reading("svm", digit, 0.5, (0.1,) * 10),
            Reading("cnn", (digit + 1) % 10, 0.5, (0.1,) * 10),
        ],
        model_versions=versions,
    )
    print(drawing_id, flush=True)
    written += 1
"""


def start_writer(path: Path, count: int, seed: int) -> subprocess.Popen:
    environment = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(count), str(seed)],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_consistent(path: Path, acknowledged: set[int]) -> None:
    """The file passes SQLite's integrity check and holds every acknowledged drawing with both readings."""
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        stored = {row[0] for row in connection.execute("SELECT id FROM feedback_drawings")}
        assert acknowledged <= stored, f"lost {len(acknowledged - stored)} acknowledged drawings"
        # No drawing was saved without its predictions: each write was all or nothing.
        incomplete = connection.execute(
            "SELECT COUNT(*) FROM feedback_drawings d "
            "WHERE (SELECT COUNT(*) FROM feedback_predictions p WHERE p.drawing_id = d.id) != 2"
        ).fetchone()[0]
        assert incomplete == 0
    finally:
        connection.close()


def test_processes_and_threads_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "lab.sqlite3"
    FeedbackStore(path).close()
    processes, process_writes = 3, 40
    thread_writes = 25
    writers = [start_writer(path, process_writes, seed) for seed in range(processes)]

    shared = FeedbackStore(path)
    acknowledged: list[int] = []
    failures: list[BaseException] = []

    def write(own_store: bool, seed: int) -> None:
        target = FeedbackStore(path) if own_store else shared
        try:
            for index in range(thread_writes):
                acknowledged.append(save(target, label=index % 10, svm=1, cnn=2, seed=seed * 1000 + index))
        except BaseException as error:  # noqa: BLE001 - the main thread reports any failure of a writer thread.
            failures.append(error)
        finally:
            if own_store:
                target.close()

    # Two threads share one store, as the dashboard's sessions do; two more open their own connections.
    threads = [threading.Thread(target=write, args=(own, seed)) for seed, own in enumerate([False, False, True, True])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        output, errors = writer.communicate(timeout=300)
        assert writer.returncode == 0, errors
        acknowledged.extend(int(line) for line in output.split())
    shared.close()

    assert not failures, failures
    assert len(acknowledged) == len(set(acknowledged)) == processes * process_writes + 4 * thread_writes
    with FeedbackStore(path) as check:
        assert check.count() == len(acknowledged)
    assert_consistent(path, set(acknowledged))


def readline_within(stream, seconds: float) -> str | None:
    """The next line of ``stream``, or None when none arrives within ``seconds``."""
    # readline() blocks, so it runs on a thread of its own and the wait for its answer is the bounded one.
    line: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: line.put(stream.readline()), daemon=True).start()
    try:
        return line.get(timeout=max(seconds, 0.0))
    except queue.Empty:
        return None


def read_acknowledged(writer: subprocess.Popen, until: int, timeout: float) -> list[int]:
    """Ids printed by ``writer``, read until ``until`` of them have arrived; fails if that takes over ``timeout`` s."""
    acknowledged = []
    deadline = time.monotonic() + timeout
    while len(acknowledged) < until:
        line = readline_within(writer.stdout, deadline - time.monotonic())
        if line is None:
            # Killing the hung writer closes the pipe, which also ends the thread still waiting on it.
            writer.kill()
            writer.wait()
            pytest.fail(f"the writer acknowledged only {len(acknowledged)} drawings in {timeout} s")
        if not line:
            pytest.fail(f"the writer stopped early: {writer.stderr.read()}")
        acknowledged.append(int(line))
    return acknowledged


def test_reading_acknowledgements_fails_instead_of_hanging_when_the_writer_hangs():
    hung = subprocess.Popen(
        [sys.executable, "-c", "import time; print(1, flush=True); time.sleep(20)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with pytest.raises(pytest.fail.Exception, match="acknowledged only 1 drawings"):
        read_acknowledged(hung, until=2, timeout=2)
    assert hung.poll() is not None, "the hung writer is stopped"


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_writer_killed_mid_write_leaves_a_consistent_database_with_every_acknowledged_drawing(tmp_path):
    path = tmp_path / "lab.sqlite3"
    acknowledged: set[int] = set()
    rng = np.random.default_rng(0)
    for round_number in range(3):
        writer = start_writer(path, 0, seed=round_number)
        acknowledged.update(read_acknowledged(writer, until=15, timeout=120))
        # Kill at a random moment within the next few writes, so the kill lands inside some transaction.
        time.sleep(float(rng.uniform(0.0, 0.05)))
        os.kill(writer.pid, signal.SIGKILL)
        # Ids printed before the kill are acknowledged too; the pipe still holds them.
        remaining, _ = writer.communicate(timeout=30)
        acknowledged.update(int(line) for line in remaining.split())
        assert writer.returncode == -signal.SIGKILL

        assert_consistent(path, acknowledged)
    # The killed writers left the database usable: a new writer appends after the last id.
    with FeedbackStore(path) as store:
        assert save(store, label=0, svm=0, cnn=0) > max(acknowledged)
        assert store.count() >= len(acknowledged) + 1


# The command line.


def test_cli_stats_and_export(store, tmp_path, capsys):
    from digitlab.cli import main

    save(store, label=3, svm=3, cnn=5)
    save(store, label=5, svm=5, cnn=5)
    database = ["--db", str(store.path)]

    assert main(["feedback", "stats", *database, "--confusion"]) == 0
    text = capsys.readouterr().out
    assert "2 saved drawings" in text and "| svm | 100.00% | 2/2 | 1 |" in text and "| cnn | 50.00% | 1/2 | 1 |" in text
    assert "cnn (rows: your label" in text

    assert main(["feedback", "stats", *database, "--json", "--misread-by", "any"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["drawings"] == 1 and report["models"][1]["confusion_matrix"][3][5] == 1
    assert report["filtered"] and report["per_digit"] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]

    assert main(["feedback", "stats", *database, "--label", "0"]) == 0
    assert "No saved drawing in" in capsys.readouterr().out

    assert main(["feedback", "export", *database, "--out", str(tmp_path / "out"), "--label", "5"]) == 0
    assert capsys.readouterr().out.split() == [
        str(tmp_path / "out" / name) for name in (IDX_IMAGES_NAME, IDX_LABELS_NAME, CSV_NAME)
    ]
    assert read_idx(gzip.decompress((tmp_path / "out" / IDX_LABELS_NAME).read_bytes())).tolist() == [5]

    assert main(["feedback", "export", *database, "--out", str(tmp_path / "none"), "--label", "0"]) == 1
    assert "no saved drawings" in capsys.readouterr().err and not (tmp_path / "none").exists()


def test_cli_export_into_a_path_that_is_a_file_says_so_in_one_line(store, tmp_path, capsys):
    from digitlab.cli import main

    save(store, label=3, svm=3, cnn=5)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    assert main(["feedback", "export", "--db", str(store.path), "--out", str(blocker)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: Cannot write the export into {blocker}") and error.count("\n") == 1


def test_cli_on_an_empty_or_damaged_database_says_so_in_one_line(tmp_path, capsys):
    from digitlab.cli import main

    assert main(["feedback", "stats", "--db", str(tmp_path / "new.sqlite3")]) == 0
    assert "No saved drawings" in capsys.readouterr().out

    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"garbage" * 500)
    assert main(["feedback", "stats", "--db", str(damaged)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and "damaged" in error
    assert damaged.read_bytes() == b"garbage" * 500
