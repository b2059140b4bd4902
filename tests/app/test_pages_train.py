"""The Train page and the compare page's runs section, run headless with AppTest against a database in a temp folder.

One test starts a real worker process from the page, waits for it through the
registry as the page does, promotes the run and rolls it back.
"""

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from digitlab import settings
from digitlab.errors import DigitlabError
from digitlab.lab import promotion, runs
from digitlab.persistence import read_manifest, write_manifest
from tests.app.apptest import (
    assert_no_exception,
    button_labelled,
    page,
    plotly_specs,
    texts,
)
from tests.support import recorded_sweep, stop_unfinished_workers

WAIT_SECONDS = 300


@pytest.fixture
def database(tmp_path, monkeypatch) -> Iterator[Path]:
    path = tmp_path / "lab" / "digitlab.sqlite3"
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(path))
    monkeypatch.delenv(settings.MODELS_DIR_VARIABLE, raising=False)
    yield path
    stop_unfinished_workers(path)


def succeeded_run(
    registry: runs.RunRegistry,
    family: str,
    size: int,
    accuracy: float,
    seconds: float,
    folder: Path = Path("unused"),
    **options,
) -> int:
    """A run recorded as finished, with the figures a tiny real run would have."""
    run_id = registry.create_run(runs.TrainingRequest(family, train_size=size, **options))
    registry.mark_running(run_id, os.getpid(), folder)
    registry.mark_succeeded(
        run_id,
        {
            "data": {"mnist_images": size, "train_images": size},
            "metrics": {
                "test": {"accuracy": accuracy, "errors": round((1 - accuracy) * 10_000)},
                "history": {"loss": [1.0, 0.5], "accuracy": [0.6, 0.8], "val_loss": [0.9], "val_accuracy": [0.7]},
            },
            "training_seconds": seconds,
            "total_seconds": seconds + 5,
            "artifact": "unused",
            "sha256": "0" * 64,
            "size_bytes": 1,
        },
    )
    return run_id


def test_the_train_page_offers_each_familys_own_settings(database):
    app = page("train").run()

    assert_no_exception(app)
    assert [slider.label for slider in app.slider] == ["Epochs"]
    assert not app.number_input
    assert "No runs yet" in texts(app.info)
    assert "The shipped models are in use." in texts(app.info)

    app.segmented_control(key="family").set_value("svm").run()

    assert_no_exception(app)
    assert not app.slider
    assert [field.label for field in app.number_input] == ["C (penalty on mistakes)", "gamma (RBF width)"]
    assert max(app.select_slider(key="train_size").options, key=lambda text: int(text.replace(",", ""))) == "20,000"


def test_the_networks_start_from_the_quick_recipe_and_each_recipe_keeps_its_own_defaults(database):
    from digitlab.models.neural import CNNClassifier, MLPClassifier

    app = page("train").run()

    assert app.segmented_control(key="recipe").value == "quick"
    assert app.slider(key="epochs_mlp_quick").value == MLPClassifier.quick_settings["epochs"]
    assert app.toggle(key="augment_mlp_quick").value is False

    app.segmented_control(key="recipe").set_value("full").run()
    assert_no_exception(app)
    assert app.slider(key="epochs_mlp_full").value == runs.REQUEST_DEFAULTS["epochs"]
    assert app.toggle(key="augment_mlp_full").value is True

    app.segmented_control(key="family").set_value("cnn").run()
    app.segmented_control(key="recipe").set_value("quick").run()
    assert app.slider(key="epochs_cnn_quick").value == CNNClassifier.quick_settings["epochs"]

    app.segmented_control(key="family").set_value("svm").run()
    assert_no_exception(app)
    assert not [control for control in app.segmented_control if control.key == "recipe"]


def test_a_run_started_on_the_page_trains_in_the_background_and_can_be_promoted_and_rolled_back(database):
    app = page("train").run()
    app.select_slider(key="train_size").set_value(500)
    app.slider(key="epochs_mlp_quick").set_value(1)
    button_labelled(app, "Start training").click().run()

    assert_no_exception(app)
    with runs.RunRegistry(database) as registry:
        (run,) = registry.list_runs()
        assert run.parameters == {
            "family": "mlp",
            "train_size": 500,
            "epochs": 1,
            "augment": False,
            "recipe": "quick",
            "include_drawings": False,
            "seed": 0,
        }
        assert any(f"#{run.id} MLP" in element.value for element in app.markdown)
        deadline = time.monotonic() + WAIT_SECONDS
        while not registry.get_run(run.id).finished and time.monotonic() < deadline:
            time.sleep(0.5)
        run = registry.get_run(run.id)
    assert run.status == "succeeded", run.error

    app.run()
    assert_no_exception(app)
    table = app.dataframe[0].value
    assert table.loc[0, "status"] == "succeeded"
    assert table.loc[0, "accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])

    button_labelled(app, "Promote...").click().run()
    button_labelled(app, f"Promote run #{run.id}").click().run()

    assert_no_exception(app)
    assert f"Run #{run.id}'s MLP is now in use on the Draw page" in texts(app.success)
    pointer = promotion.read_pointer()
    assert pointer["run_id"] == run.id
    # One message for the outcome: the box that says which models are in use does not repeat it.
    assert promotion.describe_pointer(pointer) not in texts(app.info)
    serving = promotion.serving_models_dir()
    assert serving.parent.parent == database.parent / "active"
    assert read_manifest(serving).models["mlp"].sha256 == run.sha256

    button_labelled(app, "Roll back the last promotion").click().run()

    assert_no_exception(app)
    assert "Rolled back. The shipped models are in use." in texts(app.success)
    assert "The shipped models are in use." not in texts(app.info)
    assert promotion.serving_models_dir() == settings.models_dir()
    assert json.loads((database.parent / "active" / promotion.POINTER_NAME).read_text())["generation"] is None


def test_start_starts_one_run_per_click_however_quickly_the_clicks_come(database, monkeypatch):
    launched = []

    def launch(request):
        launched.append(request)
        with runs.RunRegistry(database) as registry:
            run_id = registry.create_run(request)
            # This process stands in for the worker, so the page does not mark the run as lost.
            registry.mark_running(run_id, os.getpid(), database.parent)
        return run_id

    monkeypatch.setattr("digitlab.lab.worker.launch", launch, raising=True)
    app = page("train").run()
    start = button_labelled(app, "Start training")

    # Clicks sent before the page redrew carry the button as it was first drawn, as quick clicks in a browser do.
    for _ in range(3):
        start.click().run()

    assert_no_exception(app)
    assert len(launched) == 1

    button_labelled(app, "Start training").click().run()

    assert_no_exception(app)
    assert len(launched) == 2, "a click on the redrawn button is a new request"


def run_with_accuracy(database: Path, folder: Path, accuracy: float) -> int:
    """A succeeded MLP run whose folder holds the shipped MLP's manifest entry with ``accuracy`` as its score."""
    shipped = read_manifest(settings.models_dir())
    entry = shipped.models["mlp"]
    folder.mkdir(parents=True)
    write_manifest(
        replace(shipped, models={"mlp": replace(entry, metrics=replace(entry.metrics, accuracy=accuracy))}), folder
    )
    with runs.RunRegistry(database) as registry:
        return succeeded_run(registry, "mlp", 5000, accuracy, 30.0, folder, epochs=3)


def test_promote_asks_first_showing_the_accuracy_change_and_the_ensemble_dropping_out(database, tmp_path):
    shipped = read_manifest(settings.models_dir()).models
    if not {"mlp", "ensemble"} <= set(shipped):
        pytest.skip("The models in use hold no MLP and ensemble to replace.")
    run_id = run_with_accuracy(database, tmp_path / "run", 0.956)
    pointer_file = database.parent / "active" / promotion.POINTER_NAME
    app = page("train").run()

    button_labelled(app, "Promote...").click().run()

    assert_no_exception(app)
    question = texts(app.warning)
    before = shipped["mlp"].accuracy
    assert f"**Promote run #{run_id}?**" in question
    assert f"test accuracy {before:.2%} → 95.60%, {100 * (before - 0.956):.2f} points lower" in question
    assert "The ensemble would drop out of the Draw page and the sidebar" in question
    assert "Rolling back this promotion brings it back" in question
    assert "python -m digitlab train --model ensemble" in question
    assert not pointer_file.exists(), "asking must not change the models in use"

    button_labelled(app, "Keep the models in use").click().run()

    assert_no_exception(app)
    assert not app.warning
    assert not pointer_file.exists()
    assert "The shipped models are in use." in texts(app.info)


def test_the_registry_names_runs_by_their_settings_and_shows_a_dash_for_what_a_run_lacks(database):
    with runs.RunRegistry(database) as registry:
        succeeded_run(registry, "mlp", 5000, 0.95, 20.0, epochs=2)
        succeeded_run(registry, "mlp", 5000, 0.97, 40.0, epochs=10, augment=False)
        failed = registry.create_run(runs.TrainingRequest("svm", train_size=1000))
        registry.mark_finished_without_model(failed, "cancelled", "Cancelled on request.")

    app = page("train").run()

    assert_no_exception(app)
    registry_table = app.dataframe[0]
    assert registry_table.proto.placeholder == "-"
    columns = json.loads(registry_table.proto.columns)
    assert columns["status"]["width"] >= 100, "'succeeded' and 'cancelled' must fit"
    labels = app.selectbox(key="promote-run").options
    assert labels == [
        "#2 MLP · 5,000 images · 10 epochs, not augmented · 97.00%",
        "#1 MLP · 5,000 images · 2 epochs, augmented · 95.00%",
    ]


def test_the_cancel_button_asks_the_worker_to_stop(database):
    with runs.RunRegistry(database) as registry:
        run_id = registry.create_run(runs.TrainingRequest("cnn", train_size=1000, epochs=3))
        # This process stands in for the worker, so the page does not mark the run as lost.
        registry.mark_running(run_id, os.getpid(), database.parent)
        registry.record_progress(run_id, 1, 3, {"loss": 1.2, "accuracy": 0.6, "val_loss": 1.0, "val_accuracy": 0.7})

        app = page("train").run()

        assert_no_exception(app)
        assert app.get("progress")[0].proto.value == 33
        assert app.get("plotly_chart"), "the live loss and accuracy curves are missing"
        button_labelled(app, "Cancel").click().run()

        assert_no_exception(app)
        assert registry.cancel_requested(run_id)
        assert "Cancelling..." in texts(app.caption)


def test_a_run_downloading_mnist_shows_the_download_on_the_page(database):
    stage = "downloading MNIST (first use on this machine): file 2 of 4, 1.0 of 9.9 MB"
    with runs.RunRegistry(database) as registry:
        run_id = registry.create_run(runs.TrainingRequest("mlp", train_size=1000, epochs=3))
        # This process stands in for the worker, so the page does not mark the run as lost.
        registry.mark_running(run_id, os.getpid(), database.parent)
        registry.record_progress(run_id, 40, 100, {"stage": stage})

    app = page("train").run()

    assert_no_exception(app)
    (bar,) = app.get("progress")
    assert (bar.proto.value, bar.proto.text) == (40, f"running · {stage}")


def test_a_database_that_cannot_be_used_is_one_sentence(database):
    database.parent.mkdir(parents=True)
    database.write_bytes(b"not a database" * 200)

    app = page("train").run()

    assert_no_exception(app)
    assert "The run registry cannot be used." in texts(app.error)


def test_a_database_error_after_opening_is_one_sentence(database, monkeypatch):
    with runs.RunRegistry(database) as registry:
        run_id = registry.create_run(runs.TrainingRequest("mlp", train_size=200, epochs=1))
        # A worker process id that no process has: the page will want to mark the run as failed, which is a write.
        registry.record_worker(run_id, 2**22 + 12345)
    monkeypatch.setattr("digitlab.lab.database.BUSY_TIMEOUT_SECONDS", 0.1)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        app = page("train").run()
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert_no_exception(app)
    assert "The run registry cannot be used." in texts(app.error)
    assert "could not be used: database is locked; try again" in texts(app.error)


def test_the_compare_page_draws_learning_curves_of_the_runs(database):
    try:
        if not read_manifest().models:
            pytest.skip("No trained models to show on the compare page.")
    except DigitlabError as error:
        pytest.skip(f"The models folder cannot be read: {error}")
    with runs.RunRegistry(database) as registry:
        for size, accuracy, seconds in ((500, 0.80, 3.0), (1000, 0.86, 5.5), (2000, 0.90, 10.0)):
            succeeded_run(registry, "mlp", size, accuracy, seconds, epochs=2)
        succeeded_run(registry, "svm", 1000, 0.91, 1.5)

    app = page("compare").run()

    assert_no_exception(app)
    specs = {chart.proto.id: json.loads(chart.proto.spec) for chart in app.get("plotly_chart")}
    accuracy = next(
        spec
        for spec in specs.values()
        if spec["layout"].get("title", {}).get("text") == "Test accuracy by training images"
    )
    curves = {trace["name"]: (trace["x"], trace["y"]) for trace in accuracy["data"]}
    assert curves["MLP (2 epochs, augmented)"] == ([500, 1000, 2000], [0.80, 0.86, 0.90])
    assert curves["SVM (C 10, gamma 0.02, augmented)"] == ([1000], [0.91])
    # The log axis is labelled at the sizes trained on, not with plotly's "5, 1000, 2, 5".
    assert accuracy["layout"]["xaxis"]["tickvals"] == [500, 1000, 2000]
    assert accuracy["layout"]["xaxis"]["ticktext"] == ["500", "1k", "2k"]
    time_chart = next(
        spec
        for spec in specs.values()
        if spec["layout"].get("title", {}).get("text") == "Training time (s) by training images"
    )
    assert time_chart["data"][0]["y"] == [3.0, 5.5, 10.0]
    assert len(app.dataframe[-1].value) == 4


def busy_server(database: Path, monkeypatch, waiting: int) -> list[int]:
    """One run may train at a time, one is training (this process stands in for its worker), ``waiting`` wait."""
    monkeypatch.setenv(settings.MAX_TRAINING_RUNS_VARIABLE, "1")
    with runs.RunRegistry(database) as registry:
        training = registry.create_run(runs.TrainingRequest("cnn", train_size=1000, epochs=3))
        registry.mark_running(training, os.getpid(), database.parent)
        return [registry.enqueue_run(runs.TrainingRequest("mlp", train_size=500, epochs=1)) for _ in range(waiting)]


def queued_bars(app) -> list[str]:
    return [bar.proto.text for bar in app.get("progress") if bar.proto.text.startswith("queued")]


def test_runs_waiting_for_a_slot_show_their_place_in_line_and_cancelling_one_takes_it_out(database, monkeypatch):
    first, second, third = busy_server(database, monkeypatch, waiting=3)

    app = page("train").run()

    assert_no_exception(app)
    assert "At most 1 run trains at once on this server (`DIGITLAB_MAX_TRAINING_RUNS`)" in texts(app.caption)
    assert queued_bars(app) == [
        "queued · next in line, waiting for a free training slot",
        "queued · number 2 of 3 in line, waiting for a free training slot",
        "queued · number 3 of 3 in line, waiting for a free training slot",
    ]
    assert [element.value for element in app.markdown if element.value.startswith("**#")] == [
        f"**#{run_id} {label}**"
        for run_id, label in (
            (1, "CNN · 1,000 images · 3 epochs, augmented"),
            (first, "MLP · 500 images · 1 epoch, augmented"),
            (second, "MLP · 500 images · 1 epoch, augmented"),
            (third, "MLP · 500 images · 1 epoch, augmented"),
        )
    ]

    app.button(key=f"cancel-{second}").click().run()

    assert_no_exception(app)
    with runs.RunRegistry(database) as registry:
        assert registry.get_run(second).status == "cancelled"
        assert [run.id for run in registry.waiting_runs()] == [first, third]
        assert registry.get_run(first).worker_pid is None, "a run started while the only slot was taken"
    assert queued_bars(app) == [
        "queued · next in line, waiting for a free training slot",
        "queued · number 2 of 2 in line, waiting for a free training slot",
    ]
    assert app.dataframe[0].value.set_index("run").loc[second, "status"] == "cancelled"


def test_a_run_started_while_the_server_is_busy_is_queued_with_its_place(database, monkeypatch):
    busy_server(database, monkeypatch, waiting=1)
    app = page("train").run()

    button_labelled(app, "Start training").click().run()

    assert_no_exception(app)
    assert [toast.value for toast in app.toast] == ["Run #3 is queued, number 2 of 2 in line."]
    with runs.RunRegistry(database) as registry:
        assert [run.id for run in registry.waiting_runs()] == [2, 3]


def test_a_run_that_frees_the_slot_lets_the_page_start_the_next_in_line(database, monkeypatch):
    (waiting,) = busy_server(database, monkeypatch, waiting=1)
    with runs.RunRegistry(database) as registry:
        registry.mark_finished_without_model(1, "cancelled", "Cancelled on request.")

    app = page("train").run()

    assert_no_exception(app)
    with runs.RunRegistry(database) as registry:
        run = registry.get_run(waiting)
        assert run.status == "running" and run.worker_pid is not None
        assert registry.waiting_runs() == []
    assert not queued_bars(app)


def test_a_limit_set_wrongly_is_one_sentence(database, monkeypatch):
    monkeypatch.setenv(settings.MAX_TRAINING_RUNS_VARIABLE, "lots")

    app = page("train").run()

    assert_no_exception(app)
    assert "DIGITLAB_MAX_TRAINING_RUNS must be a whole number of at least 1, not 'lots'." in texts(app.error)


def no_workers(monkeypatch) -> None:
    """Runs put in line stay there: the page starts no worker, so a test can look at the line it made."""
    monkeypatch.setattr("digitlab.lab.worker.start_queued_runs", lambda *arguments, **options: [])


def test_a_sweep_started_on_the_page_queues_one_run_per_value_and_shows_them(database, monkeypatch):
    no_workers(monkeypatch)
    app = page("train").run()
    app.segmented_control(key="start_mode").set_value("sweep").run()

    assert_no_exception(app)
    assert app.pills(key="swept_mlp").value == ["train_size"]
    assert not [control for control in app.select_slider if control.key == "train_size"]
    assert app.multiselect(key="sweep_values_mlp_train_size").value == [1_000, 2_000, 5_000, 10_000]
    assert "This sweep queues 4 runs, one per combination of the values." in texts(app.caption)
    app.multiselect(key="sweep_values_mlp_train_size").set_value([500, 2_000]).run()
    app.slider(key="epochs_mlp_quick").set_value(2).run()
    button_labelled(app, "Start sweep").click().run()

    assert_no_exception(app)
    assert "Sweep #1: 2 runs are in line" in texts(app.toast)
    with runs.RunRegistry(database) as registry:
        (sweep,) = registry.list_sweeps()
        swept = registry.sweep_runs(sweep.id)
    assert sweep.axes == {"train_size": [500, 2_000]}
    assert [(run.train_size, run.parameters["epochs"], run.parameters["recipe"]) for run in swept] == [
        (500, 2, "quick"),
        (2_000, 2, "quick"),
    ]
    assert queued_bars(app)[:2] == [
        "queued · next in line, waiting for a free training slot",
        "queued · number 2 of 2 in line, waiting for a free training slot",
    ]
    (figure,) = [
        spec for spec in plotly_specs(app) if spec["layout"].get("title", {}).get("text", "").startswith("Sweep #1")
    ]
    assert figure["layout"]["title"]["text"] == "Sweep #1 · MLP · training images · 0 of 2 runs ended"

    button_labelled(app, "Cancel its 2 unfinished runs").click().run()

    assert_no_exception(app)
    assert "Sweep #1: 2 unfinished runs cancelled." in texts(app.toast)
    with runs.RunRegistry(database) as registry:
        assert [run.status for run in registry.sweep_runs(sweep.id)] == ["cancelled", "cancelled"]
    assert not [button for button in app.button if button.label.startswith("Cancel its")]
    assert not queued_bars(app)


def test_an_svm_sweep_varies_c_and_gamma_and_a_third_setting_is_refused_with_a_sentence(database, monkeypatch):
    no_workers(monkeypatch)
    app = page("train").run()
    app.segmented_control(key="family").set_value("svm").run()
    app.segmented_control(key="start_mode").set_value("sweep").run()
    app.pills(key="swept_svm").set_value(["train_size", "C", "gamma"]).run()
    button_labelled(app, "Start sweep").click().run()

    assert "A sweep varies one or two settings, not 3" in texts(app.error)
    with runs.RunRegistry(database) as registry:
        assert registry.list_sweeps() == [] and registry.list_runs() == []

    app.pills(key="swept_svm").set_value(["C", "gamma"]).run()
    assert "This sweep queues 9 runs, one per combination of the values." in texts(app.caption)
    assert app.select_slider(key="train_size").value == runs.REQUEST_DEFAULTS["train_size"]
    button_labelled(app, "Start sweep").click().run()

    assert_no_exception(app)
    with runs.RunRegistry(database) as registry:
        (sweep,) = registry.list_sweeps()
        assert sweep.axes == {"C": [1.0, 5.0, 10.0], "gamma": [0.01, 0.02, 0.05]}
        assert len(registry.sweep_runs(sweep.id)) == 9


def test_the_compare_page_draws_a_two_setting_sweep_as_a_heat_map_with_its_runs(database, monkeypatch):
    no_workers(monkeypatch)
    sweep_id, run_ids = recorded_sweep(database)

    app = page("compare").run()

    assert_no_exception(app)
    assert app.selectbox(key="compared-sweep").value == sweep_id
    (figure,) = [
        spec for spec in plotly_specs(app) if spec["layout"].get("title", {}).get("text", "").startswith("Sweep #")
    ]
    heatmap, markers = figure["data"]
    assert heatmap["type"] == "heatmap" and (heatmap["x"], heatmap["y"]) == (["1", "10"], ["0.01", "0.02"])
    assert heatmap["z"] == [[0.91, 0.92], [0.93, None]]
    assert heatmap["text"][1] == [f"93.00%<br>#{run_ids[1]}", f"queued<br>#{run_ids[3]}"]
    # Each cell carries a marker with its run's id, so a click on the cell picks that run.
    placed = list(zip(markers["x"], markers["y"], markers["customdata"], strict=True))
    assert placed == [("1", "0.01", run_ids[0]), ("10", "0.01", run_ids[2]), ("1", "0.02", run_ids[1])] + [
        ("10", "0.02", run_ids[3])
    ]
    (table,) = [frame.value for frame in app.dataframe if {"C", "gamma"} <= set(frame.value.columns)]
    assert list(table["run"]) == run_ids and list(table["status"]) == ["succeeded"] * 3 + ["queued"]
    assert "Click a point of the chart to see its run" in texts(app.caption)


def test_a_clicked_sweep_point_names_its_run():
    from ui.sweep_view import selected_run

    assert selected_run({"selection": {"points": [{"x": "10", "y": "0.01", "customdata": 7}]}}) == 7
    assert selected_run({"selection": {"points": [{"curve_number": 0, "customdata": [12]}]}}) == 12
    assert selected_run({"selection": {"points": [{"x": "10"}]}}) is None
    assert selected_run({"selection": {"points": []}}) is None
    assert selected_run(None) is None


def test_with_a_ray_cluster_the_page_says_where_runs_train(database, monkeypatch):
    no_workers(monkeypatch)
    monkeypatch.setenv(settings.RAY_ADDRESS_VARIABLE, "ray://head:10001")
    app = page("train").run()

    assert_no_exception(app)
    assert "Runs train on the Ray cluster at `ray://head:10001`" in texts(app.caption)
    assert f"follows at most {settings.RAY_DEFAULT_MAX_TRAINING_RUNS} at once" in texts(app.caption)
