"""What several kinds of test share and that is not a fixture: the project's folder, made-up digits and drawings,
the clean-up of training workers, and waiting for a server a test started."""

import http.server
import io
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlab.lab import runs, sweeps
from digitlab.lab.database import DatabaseError
from digitlab.lab.feedback import FeedbackStore, original_png
from digitlab.models.base import Reading

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder's files without logging every request into the test output."""

    def log_message(self, *arguments):
        pass


def digit_like_stroke(size: int = 64) -> np.ndarray:
    """A float image in [0, 1] with a thick vertical bar, like a drawn 1."""
    image = np.zeros((size, size), dtype=np.float32)
    image[size // 6 : size - size // 6, size // 2 - size // 16 : size // 2 + size // 16] = 1.0
    return image


# Drawings that are not digits, as strokes on a 200-pixel page: what a user draws to test the lab.
NOT_DIGITS = {
    "house": (
        [(40, 90), (40, 170), (160, 170), (160, 90), (40, 90), (100, 30), (160, 90)],
        [(85, 170), (85, 125), (115, 125), (115, 170)],
    ),
    "H": ([(55, 30), (55, 170)], [(145, 30), (145, 170)], [(55, 100), (145, 100)]),
    "star": ([(100, 20), (147, 165), (24, 75), (176, 75), (53, 165), (100, 20)],),
    "plus": ([(100, 35), (100, 165)], [(35, 100), (165, 100)]),
}


def touching_pair(left: np.ndarray, right: np.ndarray, overlap: int = 6) -> np.ndarray:
    """Two MNIST digits side by side, their boxes overlapping by ``overlap`` columns, as one 28x28 model input."""
    from digitlab.imaging.normalise import crop_to_ink, digit_to_mnist

    canvas = np.zeros((28, 56 - overlap), dtype=np.float32)
    canvas[:, :28] = left / 255.0
    canvas[:, 28 - overlap :] = np.maximum(canvas[:, 28 - overlap :], right / 255.0)
    return digit_to_mnist(crop_to_ink(canvas), keep_thin_parts=False)


def not_a_digit_png(kind: str, width: int = 10) -> bytes:
    """A dark-on-light PNG of one of :data:`NOT_DIGITS`, drawn with a pen ``width`` pixels wide."""
    image = Image.new("L", (200, 200), 255)
    pen = ImageDraw.Draw(image)
    for stroke in NOT_DIGITS[kind]:
        pen.line(stroke, fill=0, width=width, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


VERSIONS = {"svm": "a" * 64, "cnn": "c" * 64}


def model_input(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(28, 28), dtype=np.uint8)


def reading(model: str, digit: int, confidence: float = 0.9) -> Reading:
    probabilities = [(1 - confidence) / 9] * 10
    probabilities[digit] = confidence
    return Reading(model, digit, confidence, tuple(probabilities))


def save(store: FeedbackStore, label: int, svm: int, cnn: int, seed: int = 0, source: str = "drawn") -> int:
    canvas = np.zeros((40, 40, 4), dtype=np.uint8)
    canvas[10:30, 18:22] = 255
    return store.save(
        original=original_png(canvas),
        model_input=model_input(seed),
        label=label,
        predictions=[reading("svm", svm), reading("cnn", cnn)],
        model_versions=VERSIONS,
        source=source,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_ready(process: subprocess.Popen, ready: Callable[[], bool], *, name: str, log: Path, seconds: float):
    """Poll ``ready`` until it holds; fail with the process's output if it ends first or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not answer within {seconds} s:\n{log.read_text()}")
        time.sleep(0.5)


def stop_unfinished_workers(database: Path) -> None:
    """Kill the worker of every unfinished run, so a test that failed while waiting leaves nothing training."""
    try:
        with runs.RunRegistry(database) as registry:
            unfinished = registry.list_runs(runs.ACTIVE)
    except DatabaseError:
        # A test's deliberately damaged database holds no runs.
        return
    for run in unfinished:
        # A test may record its own process as a run's worker; that one is not to be killed.
        if run.worker_pid != os.getpid() and runs.process_is_alive(run.worker_pid):
            os.kill(run.worker_pid, signal.SIGKILL)


def recorded_sweep(database: Path) -> tuple[int, list[int]]:
    """An SVM sweep of C x gamma with three runs finished and one still in line."""
    request = sweeps.SweepRequest(
        runs.TrainingRequest("svm", train_size=1_000, augment=False), {"C": (1, 10), "gamma": (0.01, 0.02)}
    )
    with runs.RunRegistry(database) as registry:
        sweep_id = registry.enqueue_sweep("svm", request.ordered_axes(), request.requests())
        run_ids = [run.id for run in registry.sweep_runs(sweep_id)]
        for run_id, accuracy in zip(run_ids[:3], (0.91, 0.93, 0.92), strict=True):
            assert registry.claim_next_run(1) == run_id
            registry.mark_running(run_id, os.getpid(), Path("unused"))
            registry.mark_succeeded(
                run_id,
                {
                    "data": {"mnist_images": 1_000, "train_images": 1_000},
                    "metrics": {"test": {"accuracy": accuracy, "errors": round((1 - accuracy) * 10_000)}},
                    "training_seconds": 2.0,
                    "total_seconds": 3.0,
                    "artifact": "unused",
                    "sha256": "0" * 64,
                    "size_bytes": 1,
                },
            )
    return sweep_id, run_ids
