"""Training runs on a Ray cluster: a real local Ray head on 127.0.0.1, started by this module, trains a run and
cancels another through the same queue and worker as local runs; the files a task sends back are checked."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from digitlab import settings
from digitlab.checksums import sha256_file
from digitlab.lab import cluster, runs, worker
from digitlab.persistence import read_manifest
from tests.support import PROJECT_ROOT, free_port, stop_unfinished_workers, wait_until_ready

WAIT_SECONDS = 300
CLUSTER_CPUS = 2
HEAD_START_SECONDS = 180


def start_head(arguments: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen:
    """``ray start --head --block`` in a process group of its own, its output in ``log``.

    ``ray stop`` would stop every Ray process of this user on the machine: another checkout's test session, or
    a cluster the lab really trains on. Blocking keeps the head's processes under this one command, so the
    fixture stops exactly them.
    """
    ray = Path(sys.executable).with_name("ray")
    with log.open("w") as output:
        return subprocess.Popen(
            [str(ray), "start", "--head", "--block", *arguments],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def listening(port: int) -> bool:
    """Whether something on 127.0.0.1 accepts connections on ``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def stop_head(head: subprocess.Popen) -> None:
    """Stop the head's process group: politely, then by force if it has not ended within a minute."""
    for stop_signal in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(head.pid, stop_signal)
        except ProcessLookupError:
            return
        try:
            head.wait(timeout=60)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def ray_head(mnist_dir) -> dict[str, str]:
    """A Ray head on 127.0.0.1 with two CPUs, whose workers import this checkout and read the session's MNIST; its
    addresses for a driver on the head's machine (``gcs``) and for a Ray Client anywhere (``client``)."""
    pytest.importorskip("ray")
    port, client_port = free_port(), free_port()
    # Ray's sockets live under its temporary folder, whose path must stay short.
    temporary = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    environment = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        settings.DATA_DIR_VARIABLE: str(mnist_dir),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    log = temporary / "head.log"
    head = start_head(
        [
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            f"--ray-client-server-port={client_port}",
            f"--num-cpus={CLUSTER_CPUS}",
            "--num-gpus=0",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temporary}",
        ],
        environment,
        log,
    )
    try:
        wait_until_ready(
            head,
            lambda: listening(port) and listening(client_port),
            name="the Ray head",
            log=log,
            seconds=HEAD_START_SECONDS,
        )
        yield {"gcs": f"127.0.0.1:{port}", "client": f"ray://127.0.0.1:{client_port}"}
    finally:
        stop_head(head)
        shutil.rmtree(temporary, ignore_errors=True)


@pytest.fixture
def ray_address(request, ray_head) -> str:
    """The head's address as the run's server is given it: a driver's (default) or a Ray Client's."""
    return ray_head[getattr(request, "param", "gcs")]


@pytest.fixture
def database(tmp_path, monkeypatch, ray_address):
    path = tmp_path / "lab.sqlite3"
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(path))
    monkeypatch.setenv(settings.RAY_ADDRESS_VARIABLE, ray_address)
    monkeypatch.setenv(settings.RAY_CPUS_VARIABLE, str(CLUSTER_CPUS))
    monkeypatch.delenv(settings.MAX_TRAINING_RUNS_VARIABLE, raising=False)
    yield path
    stop_unfinished_workers(path)


def wait_for(database: Path, run_id: int, done) -> runs.Run:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        with runs.RunRegistry(database) as registry:
            run = registry.get_run(run_id)
        if done(run):
            return run
        time.sleep(0.5)
    pytest.fail(f"run #{run_id} is still {run.status} ({run.stage}) after {WAIT_SECONDS} s")


def available_cpus(address: str) -> float:
    import ray

    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        return ray.available_resources().get("CPU", 0.0)
    finally:
        ray.shutdown()


@pytest.mark.parametrize("ray_address", ["gcs", "client"], indirect=True)
def test_a_run_trains_on_the_cluster_and_its_checked_model_comes_back(database):
    stages = set()
    run_id = worker.launch(runs.TrainingRequest("mlp", train_size=300, epochs=2, recipe="quick"), database)

    def finished(run: runs.Run) -> bool:
        stages.add(run.stage)
        return run.finished

    run = wait_for(database, run_id, finished)

    assert run.status == "succeeded", run.error
    # The cluster's resources are the queue: the server's own limit is not the machine's.
    assert worker.training_slots() == settings.RAY_DEFAULT_MAX_TRAINING_RUNS
    assert "waiting for the Ray cluster (2 CPUs)" in stages or "training on the Ray cluster" in stages
    with runs.RunRegistry(database) as registry:
        history = registry.epoch_history(run_id)
    assert len(history["loss"]) == 2 and len(history["val_accuracy"]) == 2
    artefact = Path(run.artifact)
    assert artefact.parent == runs.run_folder(run_id, settings.runs_dir(database))
    assert sha256_file(artefact) == run.sha256 == read_manifest(artefact.parent).models["mlp"].sha256
    assert 0.0 < run.metrics["test"]["accuracy"] <= 1.0 and run.data["train_images"] == 300
    log = (artefact.parent / worker.LOG_NAME).read_text()
    assert "Traceback" not in log


def test_a_cancelled_run_stops_its_task_and_frees_the_clusters_cpus(database, ray_address):
    run_id = worker.launch(runs.TrainingRequest("cnn", train_size=20_000, epochs=5, recipe="full"), database)
    wait_for(database, run_id, lambda run: run.finished or run.stage == "training on the Ray cluster")

    with runs.RunRegistry(database) as registry:
        assert registry.request_cancel(run_id)
    run = wait_for(database, run_id, lambda run: run.finished)

    assert run.status == "cancelled", run.error
    assert run.artifact is None
    deadline = time.monotonic() + 60
    while available_cpus(ray_address) < CLUSTER_CPUS and time.monotonic() < deadline:
        time.sleep(1)
    assert available_cpus(ray_address) == CLUSTER_CPUS


def test_without_a_cluster_ray_is_never_imported():
    code = (
        "import sys, digitlab.cli, digitlab.lab.worker, digitlab.lab.sweeps, digitlab.training; "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    environment = {key: value for key, value in os.environ.items() if key != settings.RAY_ADDRESS_VARIABLE}
    finished = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=environment, capture_output=True)
    assert finished.returncode == 0, finished.stderr.decode()


def model_files(models_dir: Path, family: str) -> dict[str, bytes]:
    """What a task sends back: the family's artefact and a manifest that records its checksum."""
    entry = read_manifest(models_dir).models[family]
    return {
        entry.artifact: (models_dir / entry.artifact).read_bytes(),
        "manifest.json": (models_dir / "manifest.json").read_bytes(),
    }


def test_files_sent_back_are_written_and_a_model_that_does_not_match_its_checksum_is_refused(tiny_models_dir, tmp_path):
    files = model_files(tiny_models_dir, "mlp")

    entry = cluster.receive_files("mlp", files, tmp_path / "good")
    assert entry.sha256 == sha256_file(tmp_path / "good" / entry.artifact)

    damaged = dict(files)
    damaged[entry.artifact] = files[entry.artifact][:-10] + b"0123456789"
    with pytest.raises(cluster.ClusterError, match="not registered.*does not match the manifest"):
        cluster.receive_files("mlp", damaged, tmp_path / "damaged")
    assert list((tmp_path / "damaged").iterdir()) == []
    with pytest.raises(cluster.ClusterError, match="not a plain file name"):
        cluster.receive_files("mlp", {"../escape.keras": b"x", **files}, tmp_path / "escape")
    assert not (tmp_path / "escape.keras").exists()


class ClusterWithResources:
    """Stands in for Ray where only the cluster's resources are asked for."""

    def __init__(self, resources: dict[str, float]):
        self.resources = resources

    def cluster_resources(self) -> dict[str, float]:
        return self.resources


def test_a_run_asks_for_what_the_cluster_can_give_and_an_impossible_request_is_one_sentence(monkeypatch):
    monkeypatch.setenv(settings.RAY_CPUS_VARIABLE, "2")
    with_gpu = ClusterWithResources({"CPU": 4.0, "GPU": 1.0})
    assert cluster.requested_resources(with_gpu, "cnn") == {"num_cpus": 2, "num_gpus": 1}
    # The SVM gains nothing from a GPU, and no family asks for one that the cluster does not have.
    assert cluster.requested_resources(with_gpu, "svm") == {"num_cpus": 2, "num_gpus": 0}
    assert cluster.requested_resources(ClusterWithResources({"CPU": 4.0}), "mlp") == {"num_cpus": 2, "num_gpus": 0}

    monkeypatch.setenv(settings.RAY_CPUS_VARIABLE, "8")
    with pytest.raises(cluster.ClusterError, match="asks for 8 CPUs .*the Ray cluster has 4 in all"):
        cluster.requested_resources(with_gpu, "cnn")
    monkeypatch.setenv(settings.RAY_CPUS_VARIABLE, "half")
    with pytest.raises(cluster.ClusterError, match="DIGITLAB_RAY_CPUS_PER_RUN must be a whole number"):
        cluster.requested_resources(with_gpu, "cnn")


class RefusingRay:
    """Stands in for Ray's ``init``: refuses the first ``failures`` connections, as a busy head's client server can."""

    def __init__(self, failures: int):
        self.failures = failures
        self.attempts = 0

    def init(self, **options) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("Initialization failure from server")

    def shutdown(self) -> None:
        """Nothing to undo: the refused connection left nothing behind."""


def test_connecting_tries_again_when_refused_and_says_why_when_it_keeps_being_refused(monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_RETRY_SECONDS", 0)
    busy = RefusingRay(failures=cluster.CONNECT_ATTEMPTS - 1)
    monkeypatch.setitem(sys.modules, "ray", busy)
    assert cluster.connect("ray://127.0.0.1:1") is busy and busy.attempts == cluster.CONNECT_ATTEMPTS

    down = RefusingRay(failures=cluster.CONNECT_ATTEMPTS + 5)
    monkeypatch.setitem(sys.modules, "ray", down)
    with pytest.raises(
        cluster.ClusterError, match="Cannot reach the Ray cluster at 'ray://127.0.0.1:1'.*Initialization"
    ):
        cluster.connect("ray://127.0.0.1:1")
    assert down.attempts == cluster.CONNECT_ATTEMPTS
