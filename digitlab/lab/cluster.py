"""Training a run on a Ray cluster instead of this machine, with the run's worker process relaying it.

With ``DIGITLAB_RAY_ADDRESS`` set, a run's worker (``python -m digitlab worker
RUN_ID``) does not train: it submits the training as one Ray task that asks the
cluster for ``settings.ray_cpus_per_run()`` CPUs (and a GPU for the neural
networks, where the cluster has one), relays the task's progress and epoch
figures into the lab's database exactly as a local run records them, cancels
the task when the run is cancelled, and writes the files the task sends back
into the run's folder (where it scores the saved drawings, if any, as for a
local run). The artefact must match the SHA-256 that its manifest
records before the run can succeed. Ray is imported here only, and only when a
run goes to a cluster: without the variable nothing of Ray is loaded.

Every node needs the same digitlab and requirements as the server (the task
imports ``digitlab`` there) and MNIST in its data folder, or a mirror to fetch
it from (``DIGITLAB_DATA_DIR``, ``DIGITLAB_MNIST_MIRRORS``).
"""

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from digitlab import settings
from digitlab.atomic import write_atomically
from digitlab.errors import DigitlabError, ModelUnavailableError
from digitlab.manifest import ModelEntry
from digitlab.models.neural import KerasClassifier
from digitlab.models.registry import REGISTRY
from digitlab.persistence import verified_artifact

# How often the relay looks for the task's progress and for its end, in seconds.
RELAY_POLL_SECONDS = 0.5
# Tries at connecting to the cluster before a run fails, and the pause between them.
CONNECT_ATTEMPTS = 3
CONNECT_RETRY_SECONDS = 2.0
NAMESPACE = "digitlab"
ProgressCallback = Callable[[int, int, dict], None]


class ClusterError(DigitlabError):
    """The Ray cluster cannot be reached, or a run's task failed there."""


def train_on_cluster(
    family: str,
    options: dict[str, Any],
    *,
    seed: int,
    train_size: int,
    extra_training: tuple[np.ndarray, np.ndarray] | None,
    progress: ProgressCallback,
    folder: Path,
    address: str,
) -> ModelEntry:
    """Train ``family`` as a task on the cluster at ``address``; return the entry of the model it wrote to ``folder``.

    ``progress`` receives the task's reports as a local training's; whatever it raises (a cancellation) cancels
    the task, as does an interrupt of this process.
    """
    ray = connect(address)
    try:
        files = _run_task(ray, family, options, seed, train_size, extra_training, progress)
    finally:
        ray.shutdown()
    return receive_files(family, files, folder)


def connect(address: str):
    """Ray, connected to the cluster at ``address``; a cluster that cannot be reached is one sentence."""
    try:
        import ray
    except ImportError as error:
        raise ClusterError(
            f"{settings.RAY_ADDRESS_VARIABLE} is set, but Ray is not installed here; install it with "
            "\"pip install '.[cluster]'\" or unset the variable to train on this machine."
        ) from error
    attempt = 1
    while True:
        try:
            ray.init(address=address, namespace=NAMESPACE, logging_level=logging.ERROR, log_to_driver=False)
            return ray
        except ConnectionError as error:
            # A Ray Client's server process on the head can fail to start while the head is busy; the next
            # attempt gets a new one.
            with contextlib.suppress(Exception):
                ray.shutdown()
            if attempt == CONNECT_ATTEMPTS:
                raise unreachable(address, error) from error
        except (RuntimeError, ValueError, TimeoutError) as error:
            raise unreachable(address, error) from error
        attempt += 1
        time.sleep(CONNECT_RETRY_SECONDS)


def unreachable(address: str, error: Exception) -> ClusterError:
    return ClusterError(
        f"Cannot reach the Ray cluster at {address!r} ({settings.RAY_ADDRESS_VARIABLE}): {error}. Start it with "
        f"'ray start --head', or unset {settings.RAY_ADDRESS_VARIABLE} to train on this machine."
    )


def requested_resources(ray, family: str) -> dict[str, int]:
    """What a run of ``family`` asks the cluster for: CPUs, and a GPU for the networks where there is one."""
    try:
        cpus = settings.ray_cpus_per_run()
    except ValueError as error:
        raise ClusterError(str(error)) from error
    available = ray.cluster_resources()
    # Ray would keep such a task pending for ever, and the run would wait with it.
    if cpus > available.get("CPU", 0):
        raise ClusterError(
            f"A run asks for {cpus} CPUs ({settings.RAY_CPUS_VARIABLE}), but the Ray cluster has "
            f"{available.get('CPU', 0):g} in all; ask for fewer or add nodes."
        )
    gpus = 1 if issubclass(REGISTRY[family], KerasClassifier) and available.get("GPU", 0) >= 1 else 0
    return {"num_cpus": cpus, "num_gpus": gpus}


def _run_task(ray, family, options, seed, train_size, extra_training, progress) -> dict[str, bytes]:
    from ray.exceptions import RayError
    from ray.util.queue import Queue

    resources = requested_resources(ray, family)
    task = ray.remote(train_task).options(**resources, max_retries=0, name=f"digitlab {family}")
    updates = reference = None
    finished = False
    try:
        updates = Queue(actor_options={"num_cpus": 0})
        reference = task.remote(family, options, seed, train_size, extra_training, updates)
        wanted = f"{resources['num_cpus']} CPUs" + (" and a GPU" if resources["num_gpus"] else "")
        progress(0, 0, {"stage": f"waiting for the Ray cluster ({wanted})"})
        while not finished:
            finished = bool(ray.wait([reference], timeout=RELAY_POLL_SECONDS)[0])
            for done, total, details in updates.get_nowait_batch(updates.qsize()):
                progress(done, total, details)
    except (RayError, ConnectionError) as error:
        raise ClusterError(f"Lost touch with the Ray cluster while the run trained: {error}") from error
    finally:
        # Whatever ended the relay (a cancellation, an interrupt, a lost cluster), nothing is left running there;
        # a failure to clean up must not hide why the relay ended. The cancel watcher's interrupt can arrive here,
        # after the relay already stopped on the same cancellation, so it must not cut the clean-up short either.
        if reference is not None and not finished:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                ray.cancel(reference, force=True)
        if updates is not None:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                ray.kill(updates.actor)
    return _result(ray, reference)


def _result(ray, reference) -> dict[str, bytes]:
    """The task's files, or its failure as a sentence (the digitlab error it raised keeps its own)."""
    from ray.exceptions import RayError, RayTaskError

    try:
        return ray.get(reference)
    except RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, DigitlabError):
            raise ClusterError(str(cause)) from error
        raise ClusterError(f"The training task failed on the Ray cluster: {cause or error}") from error
    except RayError as error:
        raise ClusterError(f"The training task was lost on the Ray cluster: {error}") from error


def train_task(family, options, seed, train_size, extra_training, updates) -> dict[str, bytes]:
    """The Ray task, on a cluster node: train into a temporary folder and send back its files' bytes.

    Progress goes through ``updates`` (a Ray queue) to the relay; the files are the artefact and its manifest,
    which the relay checks against each other.
    """
    from digitlab.training import train_and_record

    def report(done: int, total: int, details: dict) -> None:
        updates.put((done, total, {key: _plain(value) for key, value in details.items()}))

    report(0, 0, {"stage": "training on the Ray cluster"})
    with tempfile.TemporaryDirectory(prefix="digitlab-run-") as folder:
        train_and_record(
            family,
            seed=seed,
            train_size=train_size,
            models_dir=folder,
            progress=report,
            extra_training=extra_training,
            **options,
        )
        return {path.name: path.read_bytes() for path in Path(folder).iterdir() if path.is_file()}


def _plain(value):
    """Keras reports NumPy numbers; the relay stores plain ones."""
    return value.item() if isinstance(value, np.generic) else value


def receive_files(family: str, files: dict[str, bytes], folder: Path) -> ModelEntry:
    """Write the task's files into the run's folder and return the model's entry, its artefact's SHA-256 checked.

    Files that fail the check are removed again, so that the run's folder never holds a model nobody may load.
    """
    for name in files:
        if Path(name).name != name or name in ("", ".", ".."):
            raise ClusterError(f"The Ray task sent back a file named {name!r}, which is not a plain file name.")
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        write_atomically(folder / name, payload)
    try:
        entry, _ = verified_artifact(family, folder)
    except ModelUnavailableError as error:
        for name in files:
            (folder / name).unlink(missing_ok=True)
        raise ClusterError(
            f"The model the Ray cluster sent back failed its check, so it was not registered: {error}"
        ) from error
    return entry
