"""The load test: many people reading drawings at once while runs train on the same machine.

``bench --load`` starts training processes (the quick CNN on all 60,000 images, again and again, at the
background workers' lower priority), then lets simulated users read drawings through the Draw page's code
path (preprocessing, every base model, the not-a-digit check) in threads of one process, as Streamlit runs
each browser session in a thread of its server. Each user draws a different synthetic canvas, waits a
random think time (exponential, ``think_seconds`` on average), and reads it again. Every reading's latency
and every error is recorded.
"""

import multiprocessing
import random
import threading
import time
from typing import Any

import numpy as np

from digitlab import persistence


def keep_training(data_dir: str | None, ready, steps) -> None:
    """Train the quick CNN over and over at a background worker's priority, counting its steps, until terminated."""
    from digitlab.lab.worker import lower_priority

    # Before TensorFlow starts its threads, as a worker process does.
    lower_priority()
    import keras

    from digitlab.data.mnist import load_mnist
    from digitlab.training import build_model

    class StepCounter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            with steps.get_lock():
                steps.value += 1

    images, labels = load_mnist("train", data_dir)
    ready.set()
    while True:
        build_model("cnn", recipe="quick").fit(images, labels, callbacks=[StepCounter()])


def run_load_test(
    models_dir: str | None,
    data_dir: str | None,
    *,
    users: int = 30,
    training_runs: int = 2,
    seconds: float = 60.0,
    think_seconds: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Latency of one reading (p50, p95, max) and the errors while ``users`` read and ``training_runs`` train."""
    from digitlab.checks.samples import latency_summary, synthetic_canvas
    from digitlab.imaging.preprocess import preprocess
    from digitlab.models.registry import REGISTRY
    from digitlab.recognise import load_screen, predict_digit

    manifest = persistence.read_manifest(models_dir)
    names = [name for name in manifest.models if not REGISTRY[name].members]
    models = {name: persistence.load_model(name, models_dir) for name in names}
    screen = load_screen(models_dir)
    canvases = [synthetic_canvas(seed + user) for user in range(users)]

    def read(canvas: np.ndarray) -> None:
        model_input = preprocess(canvas)
        predict_digit(models, model_input)
        if screen is not None:
            screen.verdict(model_input)

    read(canvases[0])
    context = multiprocessing.get_context("spawn")
    trainers = []
    steps = context.Value("q", 0)
    for _ in range(training_runs):
        ready = context.Event()
        trainer = context.Process(target=keep_training, args=(data_dir, ready, steps), daemon=True)
        trainer.start()
        trainers.append((trainer, ready))
    for _, ready in trainers:
        ready.wait(timeout=120)
    # The trainers have loaded their data; give them a few seconds to reach full speed before measuring.
    time.sleep(5)
    steps_before = steps.value

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def user(number: int) -> None:
        generator = random.Random(seed + number)
        while True:
            time.sleep(generator.expovariate(1 / think_seconds))
            if time.perf_counter() >= stop_at:
                return
            started = time.perf_counter()
            try:
                read(canvases[number])
            except Exception as error:  # noqa: BLE001 - the load test counts every failure, whatever it is.
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
                continue
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=user, args=(number,)) for number in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trained_throughout = all(trainer.is_alive() for trainer, _ in trainers)
    training_steps = steps.value - steps_before
    for trainer, _ in trainers:
        trainer.terminate()
        trainer.join(timeout=10)
    return {
        "users": users,
        "training_runs": training_runs,
        "trained_throughout": trained_throughout,
        # Training batches (256 images) the runs finished while the users read: the runs went on training.
        "training_steps": training_steps,
        "seconds": seconds,
        "think_seconds": think_seconds,
        "readings": len(latencies),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "reading": latency_summary(np.array(latencies)) if latencies else {},
        "reading_max_ms": round(max(latencies), 2) if latencies else None,
    }
