"""The bounded line of training runs: its limit, and real worker processes that never exceed it.

Eight runs are asked for at once with a limit of two; the test follows every worker process through /proc and
the registry until all have ended, once with the dashboard alive and once with its process killed halfway. The
runs are the smallest real ones (an SVM on 500 images), so each worker lives a few seconds.
"""

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from digitlab import settings
from digitlab.errors import DigitlabError
from digitlab.lab import runs, worker
from tests.support import PROJECT_ROOT, stop_unfinished_workers

LIMIT = 2
# The SVM needs a few hundred images to calibrate its probabilities; on these it trains in a second or two.
TINY_RUN = runs.TrainingRequest("svm", train_size=500, augment=False)
# Eight tiny runs, two at a time, on a busy 2-core machine.
WAIT_SECONDS = 400
SAMPLE_SECONDS = 0.1
# The dashboard of the restart test: the Train page, run headless, submits eight runs and refreshes until killed.
DASHBOARD = """
import time
from tests.app.apptest import button_labelled, page

app = page("train").run()
app.segmented_control(key="family").set_value("svm").run()
app.select_slider(key="train_size").set_value(500)
app.toggle(key="augment_svm_full").set_value(False).run()
for _ in range(8):
    button_labelled(app, "Start training").click().run()
    assert not app.exception, app.exception
print("submitted", flush=True)
while True:
    time.sleep(0.5)
    app.run()
"""


@pytest.fixture
def database(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "lab" / "digitlab.sqlite3"
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(path))
    monkeypatch.setenv(settings.MAX_TRAINING_RUNS_VARIABLE, str(LIMIT))
    yield path
    stop_everything(path)


def stop_everything(database: Path) -> None:
    """Empty the line, so no ending worker starts another, then kill every worker still alive."""
    if database.exists():
        with runs.RunRegistry(database) as registry:
            for run in registry.waiting_runs():
                registry.request_cancel(run.id)
    for pids in live_workers(database).values():
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    stop_unfinished_workers(database)


def live_workers(database: Path) -> dict[int, list[int]]:
    """Run id to the process ids of every live ``python -m digitlab worker RUN`` for ``database``, from /proc.

    Zombies (ended, not yet reaped) are not alive; the database is told apart by the worker's environment. A
    worker starting the next run's worker is briefly two processes with its command line, the second forked
    but not yet the new worker: a process whose parent is a worker of the same run is that moment, not a worker.
    """
    candidates: dict[int, tuple[int, int]] = {}
    marker = f"{settings.DATABASE_VARIABLE}={database}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            environment = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if command[1:4] == [b"-m", b"digitlab", b"worker"] and state != "Z" and marker in environment:
            candidates[int(entry.name)] = (int(command[4]), int(parent))
    found: dict[int, list[int]] = {}
    for pid, (run_id, parent) in candidates.items():
        if candidates.get(parent, (None,))[0] != run_id:
            found.setdefault(run_id, []).append(pid)
    return found


@dataclass
class Watched:
    """What was seen while the runs went through the line."""

    most_alive: int = 0
    most_running: int = 0
    pids: dict[int, set[int]] = field(default_factory=dict)
    out_of_order: list[str] = field(default_factory=list)


def watch_until_finished(database: Path, run_ids: list[int], refresh: Callable[[], None] = lambda: None) -> Watched:
    """Sample the worker processes and the registry until every run has ended; ``refresh`` is called each second.

    A worker counts as alive while its process lives and its run has not ended: one that has recorded its end
    and started the next run may take a moment more to exit.
    """
    watched = Watched()
    deadline = time.monotonic() + WAIT_SECONDS
    refreshed = time.monotonic()
    with runs.RunRegistry(database) as registry:
        while time.monotonic() < deadline:
            workers = live_workers(database)
            recorded = {run.id: run for run in registry.list_runs()}
            unfinished = {run_id for run_id in run_ids if not recorded[run_id].finished}
            watched.most_alive = max(watched.most_alive, sum(len(workers.get(run_id, [])) for run_id in unfinished))
            watched.most_running = max(watched.most_running, registry.running_count())
            for run_id, pids in workers.items():
                watched.pids.setdefault(run_id, set()).update(pids)
            note_order(recorded, run_ids, watched)
            if not unfinished:
                return watched
            if time.monotonic() - refreshed > 1:
                refresh()
                refreshed = time.monotonic()
            time.sleep(SAMPLE_SECONDS)
    pytest.fail(f"the runs never all ended; last seen: {[(run.id, run.status) for run in registry.list_runs()]}")


def note_order(recorded: dict[int, runs.Run], run_ids: list[int], watched: Watched) -> None:
    """Runs start in the order they were asked for: every run that has started had all earlier ones start.

    Runs cancelled while they waited never start, so they are left out.
    """
    to_start = [run_id for run_id in run_ids if recorded[run_id].error != runs.CANCELLED_IN_LINE_MESSAGE]
    started = [run_id for run_id in to_start if recorded[run_id].status != "queued"]
    if started != to_start[: len(started)]:
        watched.out_of_order.append(str({run_id: recorded[run_id].status for run_id in run_ids}))


def assert_consistent(database: Path, run_ids: list[int], cancelled: set[int], watched: Watched) -> None:
    """Every run ended as it should, trained by exactly one worker, never above the limit, in order."""
    assert watched.most_alive <= LIMIT, f"{watched.most_alive} workers were alive at once"
    assert watched.most_running <= LIMIT
    assert watched.most_alive == LIMIT, "the runs never used both slots"
    assert not watched.out_of_order, watched.out_of_order[0]
    with runs.RunRegistry(database) as registry:
        assert registry.waiting_runs() == [] and registry.running_count() == 0
        for run_id in run_ids:
            run = registry.get_run(run_id)
            log = runs.run_folder(run_id, settings.runs_dir(database)) / worker.LOG_NAME
            if run_id in cancelled:
                assert (run.status, run.error, run.worker_pid) == ("cancelled", runs.CANCELLED_IN_LINE_MESSAGE, None)
                assert run_id not in watched.pids and not log.exists(), f"cancelled run #{run_id} had a worker"
                continue
            assert run.status == "succeeded", f"run #{run_id}: {run.error}\n{log.read_text()[-2000:]}"
            assert Path(run.artifact).is_file() and run.started_at <= run.finished_at
            assert watched.pids.get(run_id, {run.worker_pid}) == {run.worker_pid}, f"run #{run_id} had two workers"
            text = log.read_text()
            assert text.count(f"Run #{run_id} succeeded.") == 1 and "cannot be started again" not in text, text


def test_the_limit_comes_from_the_environment_or_fits_the_machine(monkeypatch):
    monkeypatch.setenv(settings.MAX_TRAINING_RUNS_VARIABLE, "3")
    assert settings.max_training_runs() == 3
    monkeypatch.delenv(settings.MAX_TRAINING_RUNS_VARIABLE)
    assert settings.max_training_runs() == settings.default_max_training_runs() >= 1

    gib = 2**30
    for cores, memory, expected in ((16, 64 * gib, 8), (16, 7 * gib, 4), (1, 64 * gib, 1), (8, None, 4), (2, gib, 1)):
        monkeypatch.setattr(settings, "usable_cores", lambda cores=cores: cores)
        monkeypatch.setattr(settings, "physical_memory_bytes", lambda memory=memory: memory)
        assert settings.default_max_training_runs() == expected, (cores, memory)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_limit_that_is_not_a_whole_number_of_at_least_one_is_refused_with_a_sentence(monkeypatch, value):
    monkeypatch.setenv(settings.MAX_TRAINING_RUNS_VARIABLE, value)
    with pytest.raises(
        DigitlabError, match=f"^DIGITLAB_MAX_TRAINING_RUNS must be a whole number of at least 1, not '{value}'.$"
    ):
        worker.training_slots()


def test_eight_runs_asked_for_at_once_train_two_at_a_time_in_order(database):
    run_ids = [worker.launch(TINY_RUN, database) for _ in range(8)]
    with runs.RunRegistry(database) as registry:
        assert [run.id for run in registry.waiting_runs()] == run_ids[LIMIT:]
        # Cancelling a run in line takes it out of the line at once; no worker ever starts for it.
        assert registry.request_cancel(run_ids[-2])
        assert [run.id for run in registry.waiting_runs()] == run_ids[LIMIT:-2] + run_ids[-1:]

    # Only the workers move the line from here: each starts the next run when its own ends.
    watched = watch_until_finished(database, run_ids)

    assert_consistent(database, run_ids, {run_ids[-2]}, watched)


def wait_for_line(process: subprocess.Popen, expected: str, log: Path) -> None:
    """Wait until ``process`` prints ``expected``; fail with its log if it ends or stays silent too long."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        readable, _, _ = select.select([process.stdout], [], [], 1.0)
        if readable and process.stdout.readline().strip() == expected:
            return
    pytest.fail(f"the dashboard never said {expected!r}; its log:\n{log.read_text()[-3000:]}")


def test_the_line_survives_the_dashboard_being_killed_halfway(database, tmp_path):
    from tests.app.apptest import assert_no_exception, page

    log = tmp_path / "dashboard.log"
    with open(log, "wb") as errors:
        dashboard = subprocess.Popen(
            [sys.executable, "-c", DASHBOARD],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            start_new_session=True,
        )
    try:
        wait_for_line(dashboard, "submitted", log)
        with runs.RunRegistry(database) as registry:
            run_ids = sorted(run.id for run in registry.list_runs())
            assert len(run_ids) == 8
            deadline = time.monotonic() + WAIT_SECONDS
            while not registry.list_runs(("succeeded",)) and time.monotonic() < deadline:
                time.sleep(SAMPLE_SECONDS)
    finally:
        os.killpg(dashboard.pid, signal.SIGKILL)
        dashboard.wait(timeout=30)
    with runs.RunRegistry(database) as registry:
        waiting = len(registry.waiting_runs())
    assert waiting >= 2, "the dashboard was killed too late to leave runs in line"

    # The dashboard starts again: its Train page shows the line as it was and moves it on each refresh.
    app = page("train").run()
    assert_no_exception(app)
    bars = [bar.proto.text for bar in app.get("progress")]
    assert sum("waiting for a free training slot" in text for text in bars) >= waiting - LIMIT
    assert any(text.startswith("queued · next in line") for text in bars), bars
    watched = watch_until_finished(database, run_ids, refresh=app.run)

    assert_no_exception(app)
    assert_consistent(database, run_ids, set(), watched)
