"""The load test's mechanics, on a short run: users read while a run trains, and every reading is counted."""

import os
import threading

from digitlab.checks.load import run_load_test
from digitlab.lab.worker import WORKER_NICENESS, lower_priority


def test_users_read_drawings_while_a_run_trains_and_none_fails(mnist_dir):
    results = run_load_test(None, str(mnist_dir), users=4, training_runs=1, seconds=4.0, think_seconds=0.2)

    assert results["trained_throughout"] and results["training_steps"] > 0
    assert results["errors"] == 0 and results["error_examples"] == []
    # Four users reading about five times a second each for four seconds, less the time the readings take.
    assert results["readings"] >= 20
    assert 0 < results["reading"]["p50_ms"] <= results["reading"]["p95_ms"] <= results["reading_max_ms"]


def test_a_background_worker_yields_the_cpu_to_the_dashboard():
    # In a child process, so that the test session keeps its own priority; the child has a second thread from
    # before the call, which must be lowered too.
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        started, release = threading.Event(), threading.Event()
        helper = threading.Thread(target=lambda: started.set() or release.wait())
        helper.start()
        started.wait()
        before = os.nice(0)
        lower_priority()
        threads = [int(name) for name in os.listdir("/proc/self/task")]
        report = [
            f"{os.getpriority(os.PRIO_PROCESS, thread) - before}:{os.sched_getscheduler(thread)}" for thread in threads
        ]
        os.write(writer, " ".join(report).encode())
        release.set()
        helper.join()
        os._exit(0)
    os.waitpid(child, 0)
    report = os.read(reader, 256).decode().split()
    assert len(report) == 2
    assert report == [f"{WORKER_NICENESS}:{os.SCHED_IDLE}"] * 2
