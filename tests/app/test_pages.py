"""Every dashboard page, run headless with Streamlit's AppTest against the configured models and MNIST.

The fixtures (``tests/app/conftest.py``) say where the models and the data come from. Error-path tests point
the pages at damaged copies in a temporary folder.
"""

import json
import sys
import types

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from digitlab import settings
from digitlab.data.mnist import FILES, DownloadProgress
from digitlab.insight import calibration
from digitlab.models.base import LOW_CONFIDENCE
from digitlab.models.registry import REGISTRY
from digitlab.persistence import MANIFEST_NAME, PROBABILITIES_NAME, load_test_probabilities
from tests.app.apptest import (
    assert_no_exception,
    button_labelled,
    card_captions,
    card_indices,
    confusion_specs,
    curve_specs,
    dashboard,
    digit_image_png,
    explorer_count,
    markdown_containing,
    page,
    plotly_specs,
    texts,
)
from tests.support import not_a_digit_png
from ui import downloads

# Draw page.


def test_draw_page_asks_for_a_digit_before_anything_is_drawn(manifest):
    app = page("draw").run()

    assert_no_exception(app)
    assert [tab.label for tab in app.tabs] == [":material/draw: Draw", ":material/upload: Upload an image"]
    assert app.slider[0].label == "Pen width"
    assert "Draw a digit on the black square" in texts(app.info)
    assert not app.metric, "no prediction may be shown for an empty canvas"


@pytest.mark.parametrize("digit", ["1", "7"])
def test_uploaded_digit_is_read_by_every_model(manifest, titles, digit):
    app = page("draw").run()
    app.file_uploader[0].set_value((f"{digit}.png", digit_image_png(digit), "image/png"))
    app.run()

    assert_no_exception(app)
    assert {metric.label for metric in app.metric} == set(titles.values())
    assert all(metric.value in "0123456789" and len(metric.value) == 1 for metric in app.metric)
    assert any(image.captions == ["What the models received (28x28)"] for image in app.image)
    verdict = texts(app.success) + texts(app.warning)
    assert "read" in verdict
    assert "does not look like a digit" not in verdict
    # The verdict comes before the model input, so on a phone it is what comes into view under the canvas.
    shown = [node.type for node in app.main if node.type in ("success", "warning", "image")]
    assert shown[:2] == ["success", "image"], shown
    # One probability chart per model, and the digit score against the range real digits have.
    assert len(app.get("plotly_chart")) == len(titles) + 1
    (score,) = [expander for expander in app.expander if expander.label.startswith("Is it a digit at all?")]
    assert score.label.startswith("Is it a digit at all? Yes: ") and "is at or above the threshold, " in score.label
    # The CNN alone reads the input at two sizes, and its card says so.
    notes = [caption.value for caption in app.caption if "of the input's size" in caption.value]
    assert notes == ["read at 100% and 85% of the input's size, the answers averaged"]


@pytest.mark.parametrize("kind", ["house", "H"])
def test_a_drawing_that_is_not_a_digit_is_said_so_and_can_still_be_saved(manifest, titles, kind):
    app = page("draw").run()
    app.file_uploader[0].set_value((f"{kind}.png", not_a_digit_png(kind), "image/png"))
    app.run()

    assert_no_exception(app)
    assert "This does not look like a digit" in texts(app.warning)
    assert not app.success, "no model may be said to read a digit"
    # Each model's closest digit is shown, dimmed, instead of a confident answer.
    assert not app.metric
    assert texts(app.markdown).count("closest digit") == len(titles)
    score = next(expander for expander in app.expander if expander.label.startswith("Is it a digit at all?"))
    assert score.label.startswith("Is it a digit at all? No: ") and "is below the threshold, " in score.label
    # The drawing can still be kept, as the digit the user says it is; nothing is preselected.
    assert button_labelled(app, "Save with this digit") is not None
    assert app.get("button_group")[0].value is None


def test_blank_or_broken_upload_shows_a_message_and_no_prediction(manifest):
    app = page("draw").run()
    app.file_uploader[0].set_value(("blank.png", digit_image_png("blank"), "image/png"))
    app.run()

    assert_no_exception(app)
    assert "No digit found" in texts(app.info)
    assert not app.metric

    app.file_uploader[0].set_value(("notes.png", b"these are not pixels", "image/png"))
    app.run()

    assert_no_exception(app)
    assert "cannot be used" in texts(app.error)
    assert not app.metric


def test_draw_page_works_on_with_the_other_models_when_one_file_is_damaged(models_copy, manifest, titles):
    damaged = next(iter(manifest.models))
    with open(models_copy / manifest.models[damaged].artifact, "ab") as artifact:
        artifact.write(b"damage")

    app = page("draw").run()
    app.file_uploader[0].set_value(("1.png", digit_image_png("1"), "image/png"))
    app.run()

    assert_no_exception(app)
    warnings = texts(app.warning)
    assert f"{titles[damaged]} is not available" in warnings and "does not match the manifest" in warnings
    answering = {metric.label for metric in app.metric}
    # Models built on the damaged one (an ensemble) may be unavailable too, but each is named in a warning.
    assert answering and titles[damaged] not in answering
    assert all(f"{title} is not available" in warnings for title in set(titles.values()) - answering)


class FixedReader:
    """A stand-in model that reads every image as ``digit`` with probability ``confidence``."""

    def __init__(self, digit: int, confidence: float):
        self.digit, self.confidence = digit, confidence

    def predict_proba(self, images):
        probabilities = np.full((len(np.asarray(images).reshape(-1, 28, 28)), 10), (1 - self.confidence) / 9)
        probabilities[:, self.digit] = self.confidence
        return probabilities


def test_a_reading_below_the_low_confidence_line_is_unsure_not_agreement(monkeypatch, manifest, titles):
    sure, unsure = list(manifest.models)[:2]
    doubtful = round(LOW_CONFIDENCE - 0.23, 2)
    readers = {sure: FixedReader(1, 0.99), unsure: FixedReader(1, doubtful)}
    monkeypatch.setattr("ui.resources.load_models", lambda: (readers, {}, False))
    app = page("draw").run()
    app.file_uploader[0].set_value(("1.png", digit_image_png("1"), "image/png"))
    app.run()

    assert_no_exception(app)
    assert not app.success, "two models reading 1, one of them unsure, is not a sure agreement"
    verdict = texts(app.warning)
    assert "Unsure" in verdict and "**1**" in verdict
    assert f"{titles[unsure]} ({doubtful:.0%})" in verdict and titles[sure] not in verdict
    assert sum("unsure" in element.value for element in app.markdown) == 1, "the unsure card is marked"


def test_models_that_all_read_the_same_digit_surely_agree(monkeypatch, manifest):
    readers = {name: FixedReader(7, 0.95) for name in list(manifest.models)[:2]}
    monkeypatch.setattr("ui.resources.load_models", lambda: (readers, {}, False))
    app = page("draw").run()
    app.file_uploader[0].set_value(("7.png", digit_image_png("7"), "image/png"))
    app.run()

    assert_no_exception(app)
    assert "All 2 models read **7**" in texts(app.success)
    assert not any("unsure" in element.value for element in app.markdown)


class KeepingCanvas:
    """Stands in for the canvas component, which AppTest cannot draw on.

    It hands the page ``image`` and ``drawing`` (its Fabric.js JSON), as the real canvas does when the pen is
    lifted; with ``image`` None it is a canvas drawn afresh that has sent nothing yet, so it returns the
    ``initial_drawing`` it was given. Every ``initial_drawing`` the page passes is recorded.
    """

    def __init__(self, image: np.ndarray | None, drawing: dict | None):
        self.image, self.drawing = image, drawing
        self.initial_drawings: list[dict | None] = []

    def __call__(self, **options):
        self.initial_drawings.append(options.get("initial_drawing"))
        if self.image is None:
            return types.SimpleNamespace(image_data=None, json_data=options.get("initial_drawing"))
        return types.SimpleNamespace(image_data=self.image, json_data=self.drawing)


def drawn_one() -> np.ndarray:
    """A "1" as the canvas returns it: a white stroke on a transparent 280x280 RGBA image."""
    image = np.zeros((280, 280, 4), dtype=np.uint8)
    image[50:230, 130:150] = 255
    return image


def test_a_drawing_and_its_reading_are_still_there_after_another_page(monkeypatch, manifest, titles):
    strokes = {"objects": [{"type": "path", "path": [["M", 140, 50], ["L", 140, 230]]}], "background": "#000000"}
    canvas = KeepingCanvas(drawn_one(), strokes)
    module = types.ModuleType("streamlit_drawable_canvas")
    module.st_canvas = canvas
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", module)
    app = dashboard().run()
    readings = {metric.label: metric.value for metric in app.metric}
    assert set(readings) == set(titles.values())

    app.switch_page("pages/my_digits.py").run()
    assert not app.metric
    # Back on the Draw page the canvas is drawn afresh: it has sent nothing yet and shows what it starts with.
    canvas.image = None
    app.switch_page("pages/draw.py").run()

    assert_no_exception(app)
    assert canvas.initial_drawings[-1] == strokes, "the canvas starts with the drawing made before"
    assert {metric.label: metric.value for metric in app.metric} == readings
    assert "Draw a digit on the black square" not in texts(app.info)


def test_a_cleared_canvas_starts_empty_and_is_not_read(monkeypatch, manifest):
    canvas = KeepingCanvas(drawn_one(), {"objects": [{"type": "path"}]})
    module = types.ModuleType("streamlit_drawable_canvas")
    module.st_canvas = canvas
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", module)
    app = page("draw").run()
    assert app.metric

    canvas.image = None
    button_labelled(app, "Clear").click().run()

    assert_no_exception(app)
    assert canvas.initial_drawings[-1] is None
    assert not app.metric and "Draw a digit on the black square" in texts(app.info)


def test_the_draw_page_says_what_the_canvas_pencil_does(manifest):
    app = page("draw").run()

    hint = button_labelled(app, "Clear").help
    assert "pencil switches to moving strokes" in hint and "click it again to draw" in hint


# Compare page.


def test_compare_page_tabulates_every_model_and_follows_the_choices(manifest, titles, test_labels):
    app = page("compare").run()

    assert_no_exception(app)
    table = app.dataframe[0].value
    assert list(table["title"]) == list(titles.values())
    first = next(iter(manifest.models))
    assert table["accuracy"].iloc[0] == pytest.approx(manifest.models[first].accuracy * 100)
    assert {spec["layout"]["title"]["text"] for spec in confusion_specs(app)} == set(titles.values())
    if "ensemble" in manifest.models:
        assert f"For the {titles['ensemble']}, training time and size on disk count only" in texts(app.caption)
    charts_before = len(app.get("plotly_chart"))

    app.pills(key="figures").set_value(["accuracy", "errors"]).run()

    assert list(app.dataframe[0].value.columns) == ["title", "accuracy", "errors"]
    assert len(app.get("plotly_chart")) < charts_before

    if len(titles) > 1:
        app.pills(key="models").set_value([first]).run()
        assert list(app.dataframe[0].value["title"]) == [titles[first]]
        assert [spec["layout"]["title"]["text"] for spec in confusion_specs(app)] == [titles[first]]


def test_compare_page_tables_keep_the_model_column_in_view_when_they_scroll_sideways(models_copy, manifest):
    recorded_robustness(models_copy, manifest)
    app = page("compare").run()

    assert_no_exception(app)
    model_columns = []
    for frame in app.dataframe:
        columns = json.loads(frame.proto.columns)
        model_columns += [settings for settings in columns.values() if settings.get("label") == "Model"]
    # The scores, calibration and robustness tables, each with its model column pinned.
    assert len(model_columns) == 3
    assert all(settings.get("pinned") is True for settings in model_columns)


def test_compare_page_tables_put_their_own_figures_first_beside_the_model(models_copy, manifest):
    recorded_robustness(models_copy, manifest)
    app = page("compare").run()

    assert_no_exception(app)
    # At a phone's width only the first figures beside the pinned model column show without scrolling sideways.
    calibration_table = next(frame.value for frame in app.dataframe if "ece" in frame.value.columns)
    robustness_table = next(frame.value for frame in app.dataframe if "mce" in frame.value.columns)
    assert list(calibration_table.columns[:3]) == ["title", "ece", "auroc"]
    assert list(robustness_table.columns[:2]) == ["model", "mce"]


def test_compare_page_switches_confusion_matrices_to_row_shares(manifest, test_labels):
    app = page("compare").run()
    counts = confusion_specs(app)[0]

    app.toggle(key="confusion_normalised").set_value(True).run()

    shares = confusion_specs(app)[0]
    assert "%" not in " ".join(counts["data"][2]["text"])
    assert "%" in " ".join(shares["data"][2]["text"])


def test_compare_page_lists_the_images_of_a_confusion_cell(manifest, test_labels):
    app = page("compare").run()
    name = app.selectbox(key="cell_model").value
    matrix = np.asarray(manifest.models[name].metrics.confusion_matrix)

    for true_digit, predicted_digit in [(3, 5), (4, 4)]:
        app.selectbox(key="cell_true").set_value(true_digit)
        app.selectbox(key="cell_predicted").set_value(predicted_digit)
        app.run()

        assert_no_exception(app)
        count = int(matrix[true_digit, predicted_digit])
        markdown_containing(app, f"**{count:,}** test image")
        markdown_containing(app, f"of a **{true_digit}** that")
        assert sum(len(image.value) for image in app.image) == min(count, 30)


def test_compare_page_shows_training_curves_of_models_with_a_history(manifest):
    app = page("compare").run()
    with_history = {entry.title for entry in manifest.models.values() if entry.history}

    assert {spec["layout"]["title"]["text"] for spec in curve_specs(app)} == with_history


def test_compare_page_says_how_each_model_was_trained_in_words_not_json(manifest):
    app = page("compare").run()
    shown = texts(app.markdown)

    assert not app.json
    assert "| setting | value |" in shown
    cnn = manifest.models["cnn"]
    assert f"| learning rate | {cnn.hyperparameters['learning_rate']} |" in shown
    assert f"**Learning rate schedule**: {cnn.training_notes['learning_rate_schedule']}" in shown


def test_compare_page_shows_each_models_reliability_and_calibration_figures(manifest, titles, test_labels):
    app = page("compare").run()

    assert_no_exception(app)
    (reliability,) = [
        spec for spec in plotly_specs(app) if spec["layout"].get("title", {}).get("text", "").startswith("Reliability")
    ]
    assert [trace["name"] for trace in reliability["data"]] == ["perfectly calibrated", *titles.values()]
    (table,) = [frame.value for frame in app.dataframe if "ece" in frame.value.columns]
    assert list(table["title"]) == list(titles.values())
    stored = load_test_probabilities()
    for name, ece, auroc in zip(manifest.models, table["ece"], table["auroc"], strict=True):
        assert ece == pytest.approx(calibration.expected_calibration_error(stored[name], test_labels) * 100)
        assert auroc == pytest.approx(calibration.confidence_auroc(stored[name], test_labels))
    assert "expected calibration error" in texts(app.caption)


def test_compare_page_draws_the_recorded_time_to_accuracy_curves(models_copy):
    import json

    from digitlab.checks.bench import BENCHMARK_NAME
    from digitlab.checks.time_to_accuracy import Curve, compare_curves

    quick = Curve("quick CNN", 4, [5.0, 10.0, 20.0], [0.985, 0.991, 0.9926])
    reference = Curve("Keras' simple MNIST convnet", 15, [50.0, 100.0, 200.0], [0.98, 0.99, 0.9924])
    benchmark_path = models_copy / BENCHMARK_NAME
    recorded = json.loads(benchmark_path.read_text()) if benchmark_path.exists() else {}
    comparison = compare_curves("cnn", quick, reference)
    recorded["time_to_accuracy"] = {
        "cnn": {"quick": vars(quick), "reference": vars(reference), "comparison": comparison}
    }
    benchmark_path.write_text(json.dumps(recorded))

    app = page("compare").run()

    assert_no_exception(app)
    (chart,) = [
        spec for spec in plotly_specs(app) if "time to accuracy" in spec["layout"].get("title", {}).get("text", "")
    ]
    curves, lines = chart["data"][:2], chart["data"][2:]
    assert [trace["x"] for trace in curves] == [quick.seconds, reference.seconds]
    assert [trace["y"] for trace in curves] == [quick.accuracy, reference.accuracy]
    # The lines to reach, across the whole chart and named in its legend.
    assert [(trace["name"], trace["y"], trace["x"]) for trace in lines] == [
        ("the example's final accuracy (99.24%)", [0.9924, 0.9924], [0, 200.0]),
        ("99% accuracy", [0.99, 0.99], [0, 200.0]),
    ]
    assert (
        "The quick CNN reached 99.24% (the example's accuracy after its 15 epochs) in 20 s (10% of the example's "
        "200 s) and "
        "reached 99% in 10 s (5% of the example's 200 s)." in texts(app.caption)
    )


def test_compare_page_says_how_to_record_time_to_accuracy_curves_when_there_are_none(models_copy):
    from digitlab.checks.bench import BENCHMARK_NAME

    (models_copy / BENCHMARK_NAME).unlink(missing_ok=True)
    app = page("compare").run()

    assert_no_exception(app)
    assert "bench --time-to-accuracy" in texts(app.info)


def recorded_robustness(folder, manifest, *, distinct: bool = False):
    """A robustness file for the models in ``folder``, with made-up accuracies to check how the page shows them.

    ``distinct`` gives each model and corruption an accuracy of its own (0.9 less 0.01 a model and 0.001 a
    corruption), so a cell shown in the wrong place shows the wrong figure; otherwise every corrupted accuracy is 0.9.
    """
    from digitlab.insight.corruptions import CORRUPTIONS
    from digitlab.insight.robustness import DIRECT_ATTACK, TRANSFER_ATTACK, Robustness, save_robustness

    names = list(manifest.models)
    # As the robustness command records it: the SVM and the ensemble attacked with images crafted on the CNN.
    attacked_directly = {"mlp", "cnn"}

    def accuracy(model: int, corruption: int) -> float:
        return round(0.9 - 0.01 * model - 0.001 * corruption, 4) if distinct else 0.9

    robustness = Robustness(
        clean=dict.fromkeys(names, 0.99),
        corruptions={
            corruption: {name: accuracy(model, row) for model, name in enumerate(names)}
            for row, corruption in enumerate(CORRUPTIONS)
        },
        attacks={name: {"0.05": 0.8, "0.1": 0.5, "0.2": 0.1} for name in names},
        attack_methods={
            name: DIRECT_ATTACK if name in attacked_directly else TRANSFER_ATTACK.format(source="cnn") for name in names
        },
        model_sha256={name: entry.sha256 for name, entry in manifest.models.items()},
        test_images=10_000,
        attack_images=1_000,
        seconds=1.0,
    )
    save_robustness(robustness, folder)
    return robustness


def test_compare_page_draws_robustness_as_a_heat_map_and_attack_curves(models_copy, manifest, titles):
    from digitlab.insight.corruptions import CORRUPTIONS, SEVERITIES

    robustness = recorded_robustness(models_copy, manifest, distinct=True)
    app = page("compare").run()

    assert_no_exception(app)
    (heatmap,) = [
        spec
        for spec in plotly_specs(app)
        if spec["data"][0]["type"] == "heatmap" and spec["data"][0]["y"][:2] == ["clean", "rotate"]
    ]
    names = list(manifest.models)
    trace = heatmap["data"][0]
    assert trace["y"] == ["clean", *CORRUPTIONS]
    assert trace["x"] == [name.upper() for name in names]
    # A row a corruption, a column a model: every cell, its figure and its hover text in the right place.
    for row, corruption in enumerate(["clean", *CORRUPTIONS]):
        for column, name in enumerate(names):
            expected = robustness.clean[name] if corruption == "clean" else robustness.corruptions[corruption][name]
            assert trace["z"][row][column] == expected
            assert trace["text"][row][column] == f"{expected:.1%}"
            assert trace["customdata"][row][column][0] == titles[name]
            if corruption != "clean":
                assert trace["customdata"][row][column][1] == SEVERITIES[corruption]
    table = next(frame.value for frame in app.dataframe if "mce" in frame.value.columns)
    expected_mce = [100 * float(np.mean([1 - robustness.corruptions[c][name] for c in CORRUPTIONS])) for name in names]
    assert list(table["mce"]) == pytest.approx(expected_mce)
    # A transfer attack names the model whose images it used as the page names it everywhere else.
    attacks_by_model = dict(zip(table["model"], table["attack"], strict=True))
    assert attacks_by_model[titles["svm"]] == f"transfer: PGD images crafted on the {titles['cnn']}"
    assert attacks_by_model[titles["cnn"]] == "PGD on its own gradient"
    (attacks,) = [
        spec
        for spec in plotly_specs(app)
        if spec["layout"].get("xaxis", {}).get("title", {}).get("text", "").startswith("attack strength")
    ]
    assert [trace["y"] for trace in attacks["data"]][0] == [0.99, 0.8, 0.5, 0.1]


def test_compare_page_says_how_to_measure_robustness_when_it_is_missing_or_stale(models_copy, manifest):
    from digitlab.insight.robustness import ROBUSTNESS_NAME

    (models_copy / ROBUSTNESS_NAME).unlink(missing_ok=True)
    app = page("compare").run()
    assert_no_exception(app)
    assert "robustness.json is missing; run 'python -m digitlab robustness" in texts(app.info)

    stale = recorded_robustness(models_copy, manifest)
    (models_copy / ROBUSTNESS_NAME).write_text(
        (models_copy / ROBUSTNESS_NAME).read_text().replace(next(iter(stale.model_sha256.values())), "0" * 64)
    )
    app = page("compare").run()
    assert "was measured on other models" in texts(app.info)


# Misclassification explorer.


def test_explorer_lists_a_models_mistakes_and_filters_narrow_them(manifest, test_labels):
    app = page("explore").run()
    assert_no_exception(app)
    model = app.selectbox(key="explore_model").value
    metrics = manifest.models[model].metrics
    matrix = np.asarray(metrics.confusion_matrix)

    assert explorer_count(app) == metrics.errors
    shown = app.tabs[0].image
    # The grid shows one page of mistakes; an image is shown large only once the user inspects it.
    assert len(shown) == min(24, metrics.errors)

    digit = int(np.argmax(matrix.sum(axis=1) - np.diag(matrix)))
    app.selectbox(key="explore_true").set_value(digit).run()
    assert explorer_count(app) == int(matrix[digit].sum() - matrix[digit, digit])

    predicted = int(np.argmax(np.where(np.arange(10) == digit, -1, matrix[digit])))
    app.selectbox(key="explore_predicted").set_value(predicted).run()
    assert explorer_count(app) == int(matrix[digit, predicted])

    counts = {}
    for others in ("any", "only", "all", "disagree"):
        app.selectbox(key="explore_others").set_value(others).run()
        assert_no_exception(app)
        counts[others] = explorer_count(app)
    assert max(counts["only"], counts["all"], counts["disagree"]) <= counts["any"]
    # A mistake the models do not disagree on is one they all make, and "only this model" is a disagreement.
    assert counts["any"] <= counts["all"] + counts["disagree"]
    if len(manifest.models) > 1:
        assert counts["only"] <= counts["disagree"]


def test_explorer_reads_stored_probabilities_and_never_runs_a_model(manifest, test_labels, monkeypatch):
    def refuse(*arguments, **keywords):
        raise AssertionError("the explorer must not load or run a model")

    monkeypatch.setattr("digitlab.persistence.load_model", refuse)
    monkeypatch.setattr("digitlab.models.base.DigitClassifier.predict", refuse)
    for family in REGISTRY.values():
        monkeypatch.setattr(family, "predict_proba", refuse)
        monkeypatch.setattr(family, "load", refuse)

    app = page("explore").run()

    assert_no_exception(app)
    assert explorer_count(app) > 0 or not any(entry.metrics.errors for entry in manifest.models.values())


def test_explorer_sorts_by_confidence_or_index_and_pages(manifest, test_labels):
    app = page("explore").run()
    model = app.selectbox(key="explore_model").value
    if manifest.models[model].metrics.errors < 25:
        pytest.skip("Too few mistakes for a second page.")

    confident = [int(value.split("%")[0].split("· ")[-1]) for value in card_captions(app)]
    assert confident == sorted(confident, reverse=True)

    app.selectbox(key="explore_order").set_value("index").run()
    indices = card_indices(app)
    assert indices == sorted(indices)

    app.get("pagination")[0].set_value(2).run()
    assert "Showing **25–" in markdown_containing(app, "matching images")
    assert min(card_indices(app)) > max(indices)


def test_explorer_inspects_the_chosen_image_with_every_models_top_three(manifest, titles, test_labels):
    app = page("explore").run()
    indices = card_indices(app)
    if len(indices) < 2:
        pytest.skip("Too few mistakes to choose between.")

    app.button(key=f"inspect-{indices[1]}").click().run()

    assert_no_exception(app)
    assert f"Test image #{indices[1]}" in markdown_containing(app, "Test image #")
    readings = [element.value for element in app.markdown if "**" in element.value and " · " in element.value]
    assert all(any(title in reading for reading in readings) for title in titles.values())
    assert app.button(key=f"inspect-{indices[1]}").proto.type == "primary"


def test_explorer_sample_is_seeded_and_redrawn_on_request(manifest, titles, test_labels):
    app = page("explore").run()
    first = sample_captions(app)

    assert len(first) == 24
    assert all(all(title in caption for title in titles.values()) for caption in first)
    assert all(":green[" in caption or ":red[" in caption for caption in first)
    assert sample_captions(page("explore").run()) == first

    button_labelled(app, "Draw another sample").click().run()

    assert app.session_state["sample_seed"] == 1
    assert "Sample number 1" in texts(app.caption)
    assert sample_captions(app) != first


def sample_captions(app: AppTest) -> list[str]:
    return [element.value for element in app.markdown if element.value.startswith("**true ")]


# Dataset page.


def test_dataset_page_describes_both_splits(test_labels):
    app = page("dataset").run()

    assert_no_exception(app)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["train images"] == "60,000" and metrics["test images"] == "10,000"
    assert len([image for image in app.image if image.value]) == 11  # ten sample sheets and the mean digits
    distribution = app.dataframe[0].value
    assert distribution["test"].sum() == 10_000 and distribution["train"].sum() == 60_000
    histogram = plotly_specs(app)[-1]
    assert histogram["layout"]["yaxis"].get("type") != "log"

    app.toggle(key="include_background").set_value(True).run()

    assert plotly_specs(app)[-1]["layout"]["yaxis"]["type"] == "log"


# The whole app: sidebar and navigation between pages.


def test_sidebar_lists_every_model_with_its_accuracy(manifest, titles):
    app = dashboard().run()

    assert_no_exception(app)
    sidebar = texts(app.sidebar.markdown)
    for name, entry in manifest.models.items():
        assert titles[name] in sidebar
        assert f"{entry.accuracy:.2%}" in sidebar
    assert "loaded" in sidebar


def test_a_confusion_cell_opens_the_explorer_filtered_to_it(manifest, test_labels):
    app = dashboard()
    app.switch_page("pages/compare.py").run()
    model = app.selectbox(key="cell_model").value
    true_digit = app.selectbox(key="cell_true").value
    predicted_digit = app.selectbox(key="cell_predicted").value
    if true_digit == predicted_digit:
        pytest.skip("The model makes no mistakes to hand over.")

    button_labelled(app, "Open these mistakes in the explorer").click().run()

    assert_no_exception(app)
    assert app.title[0].value == "Misclassification explorer"
    assert app.selectbox(key="explore_model").value == model
    assert app.selectbox(key="explore_true").value == true_digit
    assert app.selectbox(key="explore_predicted").value == predicted_digit
    matrix = np.asarray(manifest.models[model].metrics.confusion_matrix)
    assert explorer_count(app) == matrix[true_digit, predicted_digit]


# Failures: a message that says what to do, never a traceback.


@pytest.mark.parametrize("name", ["draw", "compare", "explore"])
def test_pages_explain_an_empty_models_folder(tmp_path, monkeypatch, name):
    monkeypatch.setenv(settings.MODELS_DIR_VARIABLE, str(tmp_path))

    app = page(name).run()

    assert_no_exception(app)
    assert "No trained models" in texts(app.warning)
    assert "python -m digitlab train" in texts(app.warning)


@pytest.mark.parametrize("name", ["draw", "compare", "explore"])
def test_pages_explain_a_damaged_manifest(tmp_path, monkeypatch, name):
    (tmp_path / MANIFEST_NAME).write_text('{"models": ')
    monkeypatch.setenv(settings.MODELS_DIR_VARIABLE, str(tmp_path))

    app = page(name).run()

    assert_no_exception(app)
    assert "could not be read" in texts(app.error) and "retrain" in texts(app.error)


def test_sidebar_and_page_survive_a_damaged_manifest(tmp_path, monkeypatch):
    (tmp_path / MANIFEST_NAME).write_text("not json")
    monkeypatch.setenv(settings.MODELS_DIR_VARIABLE, str(tmp_path))

    app = dashboard().run()

    assert_no_exception(app)
    assert "manifest cannot be read" in texts(app.sidebar.error)


def test_explorer_explains_damaged_test_probabilities(models_copy, test_labels):
    (models_copy / PROBABILITIES_NAME).write_bytes(b"PK\x03\x04 truncated")

    app = page("explore").run()

    assert_no_exception(app)
    assert "evaluate --write" in texts(app.error)


def test_explorer_leaves_out_a_model_without_stored_probabilities(models_copy, manifest, titles, test_labels):
    missing = next(iter(manifest.models))
    with np.load(models_copy / PROBABILITIES_NAME) as archive:
        kept = {name: archive[name] for name in archive.files if name != missing}
    np.savez_compressed(models_copy / PROBABILITIES_NAME, **kept)

    app = page("explore").run()

    assert_no_exception(app)
    assert f"No stored test probabilities for {missing}" in texts(app.warning)
    if kept:
        assert missing not in app.selectbox(key="explore_model").options


def assert_explains_missing_mnist(app: AppTest) -> None:
    assert_no_exception(app)
    message = texts(app.error)
    assert settings.DATA_DIR_VARIABLE in message and settings.MNIST_MIRRORS_VARIABLE in message
    assert "digitlab train" not in message, "retraining is never the way to get the data"


@pytest.mark.parametrize("name", ["explore", "dataset"])
def test_pages_say_what_to_do_when_mnist_cannot_be_downloaded(tmp_path, monkeypatch, offline, manifest, name):
    monkeypatch.setenv(settings.DATA_DIR_VARIABLE, str(tmp_path / "fresh"))

    app = page(name).run()

    assert_explains_missing_mnist(app)
    assert offline in texts(app.get("code")), "the expander names the mirror that was tried"


@pytest.mark.parametrize("name", ["explore", "dataset"])
def test_pages_download_mnist_on_first_use_and_show_its_progress(
    tmp_path, monkeypatch, http_mirror, manifest, test_labels, name
):
    fresh = tmp_path / "fresh"
    monkeypatch.setenv(settings.DATA_DIR_VARIABLE, str(fresh))
    monkeypatch.setenv(settings.MNIST_MIRRORS_VARIABLE, http_mirror)
    shown = []
    monkeypatch.setattr(downloads, "progress_text", lambda progress: shown.append(progress) or "")

    app = page(name).run()

    assert_no_exception(app)
    assert not app.error, texts(app.error)
    assert sorted(path.name for path in fresh.iterdir()) == sorted(spec.gz_name for spec in FILES.values())
    assert [progress.file_number for progress in shown] == sorted(progress.file_number for progress in shown)
    assert shown[-1].file_number == shown[-1].file_count == 4 and shown[-1].bytes_done == shown[-1].bytes_total
    if name == "explore":
        assert explorer_count(app) > 0
    else:
        assert {metric.label: metric.value for metric in app.metric}["test images"] == "10,000"


def test_download_progress_says_which_file_and_how_much():
    progress = DownloadProgress("train-images-idx3-ubyte.gz", 2, 4, 4_900_000, 9_900_000)

    assert "file 2 of 4" in downloads.progress_text(progress)
    assert "`train-images-idx3-ubyte.gz`, 4.9 of 9.9 MB" in downloads.progress_text(progress)
    assert downloads.progress_fraction(progress) == pytest.approx((1 + 4.9 / 9.9) / 4)


def test_compare_page_keeps_its_tables_when_mnist_is_missing(tmp_path, monkeypatch, offline, manifest):
    monkeypatch.setenv(settings.DATA_DIR_VARIABLE, str(tmp_path))

    app = page("compare").run()

    assert_no_exception(app)
    assert len(app.dataframe[0].value) == len(manifest.models)
    assert settings.DATA_DIR_VARIABLE in texts(app.error)
