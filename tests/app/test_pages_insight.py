"""The insight views, run headless with Streamlit's AppTest: why-heat maps, look-alikes, the map, label issues.

They use the configured models folder and MNIST like ``test_pages``; tests of
a missing or stale insight artefact work on a copy of the models folder.
"""

import base64

import numpy as np
import pytest

from digitlab import settings
from digitlab.insight import attribution
from digitlab.insight.artefact import INSIGHT_NAME, load_insight, save_insight
from digitlab.insight.explorer import hardness
from digitlab.insight.label_issues import consensus, find_label_issues, independent_models
from digitlab.models.neural import KerasClassifier
from digitlab.models.registry import REGISTRY
from digitlab.persistence import load_test_probabilities
from tests.app.apptest import (
    assert_no_exception,
    button_labelled,
    card_indices,
    channel_grid_specs,
    digit_image_png,
    explorer_count,
    page,
    plotly_specs,
    texts,
)
from ui.charts import short_name

MAP_TAB, LABELS_TAB = 2, 3


@pytest.fixture
def insight(manifest):
    try:
        return load_insight()
    except Exception as error:  # noqa: BLE001 - any reason means the same: these tests have nothing to show.
        pytest.skip(f"No usable insight artefact: {error}")


def selected_on_map(app, indices: list[int]):
    """Stand in for a box or lasso selection on the map, as the chart reports it in the session state."""
    app.session_state["test_map-0"] = {
        "selection": {"points": [{"customdata": index} for index in indices], "point_indices": [], "box": []}
    }
    return app


def plotly_array(value) -> np.ndarray:
    """A trace's data array from the chart's JSON, where plotly writes numpy arrays as base64 ("bdata")."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def map_specs(app) -> list[dict]:
    return [spec for spec in plotly_specs(app) if any(t["type"] == "scattergl" for t in spec["data"])]


def inspect(app, position: int = 0):
    """Press Inspect on a card of the Mistakes tab, which opens that image in a dialog."""
    return app.button(key=f"inspect-{card_indices(app)[position]}").click().run()


def dialogs(block) -> list:
    """The dialog blocks anywhere under ``block`` of the app's element tree."""
    children = list(getattr(block, "children", {}).values())
    return [child for child in children if getattr(child, "type", None) == "dialog"] + [
        found for child in children for found in dialogs(child)
    ]


def test_the_map_colours_every_test_image_by_label_and_marks_each_models_mistakes(insight, titles, test_labels):
    app = page("explore").run()

    assert_no_exception(app)
    assert [tab.label.split(" ", 1)[1] for tab in app.tabs][MAP_TAB:] == [
        "Map",
        "Doubtful labels",
    ]
    (spec,) = map_specs(app)
    label_traces = [trace for trace in spec["data"] if trace["name"].startswith("label ")]
    shown = np.concatenate([plotly_array(trace["customdata"]) for trace in label_traces])
    assert sorted(shown.tolist()) == list(range(len(test_labels)))
    probabilities = load_test_probabilities()
    for name, title in titles.items():
        (trace,) = [trace for trace in spec["data"] if trace["name"].startswith(f"{title} wrong")]
        wrong = np.flatnonzero(probabilities[name].argmax(axis=1) != test_labels)
        assert plotly_array(trace["customdata"]).tolist() == wrong.tolist()

    app.pills(key="map_models").set_value([next(iter(titles))]).run()
    assert len(map_specs(app)[0]["data"]) == 10 + 1


def test_a_region_selected_on_the_map_filters_the_mistakes_and_can_be_cleared(insight, manifest, test_labels):
    app = page("explore").run()
    model = app.selectbox(key="explore_model").value
    mistakes = card_indices(app)
    chosen = [*mistakes[:2], int(np.flatnonzero(test_labels >= 0)[0])]

    selected_on_map(app, chosen).run()

    assert_no_exception(app)
    assert "Limited to the **3** images selected" in texts(app.info)
    assert explorer_count(app) == 2 and sorted(card_indices(app)) == sorted(mistakes[:2])
    assert len(app.tabs[MAP_TAB].image) == 3
    button_labelled(app, "Show the whole test set").click().run()
    assert explorer_count(app) == manifest.models[model].metrics.errors


def test_mistakes_sort_by_hardness_and_offer_the_view_as_csv(manifest, test_labels):
    app = page("explore").run()
    app.selectbox(key="explore_order").set_value("hardness").run()

    assert_no_exception(app)
    scores = hardness(load_test_probabilities())
    shown = card_indices(app)
    assert list(scores[shown]) == sorted(scores[shown], reverse=True)
    assert any(button.proto.label == "Download this view as CSV" for button in app.get("download_button"))


def test_look_alikes_show_training_images_of_the_label_and_of_the_digit_read(insight, test_labels):
    app = inspect(page("explore").run())
    images_before = len(app.image)
    selected = int(card_indices(app)[0])

    app.segmented_control(key="explore_explain").set_value("look-alikes").run()

    assert_no_exception(app)
    rows = [element.value for element in app.markdown if element.value.startswith("Training **")]
    assert rows[0] == f"Training **{test_labels[selected]}s** nearest to it (labelled digit):"
    assert len(rows) >= 2 and all("read instead" in row for row in rows[1:])
    assert len(app.image) == images_before + len(rows)


def test_inspect_opens_the_image_in_a_dialog_instead_of_below_the_cards(manifest, titles, test_labels):
    app = page("explore").run()
    assert not dialogs(app._tree), "nothing is inspected until the user asks"
    cards_images = len(app.tabs[0].image)

    inspect(app, 1)

    assert_no_exception(app)
    (dialog,) = dialogs(app._tree)
    headings = [element.value for element in dialog.markdown if "Test image #" in element.value]
    assert headings == [f"#### Test image #{card_indices(app)[1]} · true digit **{test_labels[card_indices(app)[1]]}**"]
    assert all(any(title in element.value for element in dialog.markdown) for title in titles.values())
    assert len(app.tabs[0].image) == cards_images, "the Mistakes tab itself only shows the cards"
    assert app.button(key=f"inspect-{card_indices(app)[1]}").proto.type == "primary"


def test_heat_maps_explain_every_models_answer_on_a_test_image(manifest, titles, test_labels):
    app = inspect(page("explore").run())
    app.segmented_control(key="explore_explain").set_value("heat maps").run()

    assert_no_exception(app)
    captions = [element.value for element in app.markdown if ":gray[occlusion" in element.value]
    assert {caption.split("**")[1] for caption in captions} == set(titles.values())
    saliency = [element.value for element in app.markdown if ":gray[saliency" in element.value]
    keras_titles = {title for name, title in titles.items() if issubclass(REGISTRY[name], KerasClassifier)}
    assert {caption.split("**")[1] for caption in saliency} == keras_titles
    # The colour scale the maps are drawn in is shown with them.
    assert any("strongest support" in element.value for element in app.caption)
    assert any(element.value == "no support" for element in app.caption)


def test_heat_maps_are_not_recomputed_when_the_page_reruns(manifest, titles, test_labels, monkeypatch):
    occlusions = []
    compute_occlusion = attribution.occlusion_map
    monkeypatch.setattr(
        attribution,
        "occlusion_map",
        lambda *arguments, **keywords: occlusions.append(1) or compute_occlusion(*arguments, **keywords),
    )
    app = inspect(page("explore").run())
    app.segmented_control(key="explore_explain").set_value("heat maps").run()
    computed = len(occlusions)

    app.run()

    assert_no_exception(app)
    assert len([element for element in app.markdown if ":gray[occlusion" in element.value]) == len(titles)
    assert len(occlusions) == computed, "a rerun must reuse the heat maps already computed for this image"


def test_the_draw_page_explains_an_uploaded_digit_on_request(manifest, titles):
    app = page("draw").run()
    app.file_uploader[0].set_value(("7.png", digit_image_png("7"), "image/png"))
    app.run()
    images_before = len(app.image)
    assert not any(":gray[occlusion" in element.value for element in app.markdown)

    app.toggle(key="why-uploaded").set_value(True).run()

    assert_no_exception(app)
    readings = {metric.label: metric.value for metric in app.metric}
    captions = [element.value for element in app.markdown if ":gray[occlusion" in element.value]
    assert {caption.split("**")[1] for caption in captions} == set(titles.values())
    # Each heat map names the digit its model read, the same digit as its card above.
    assert all(caption.split("**")[3] == readings[caption.split("**")[1]] for caption in captions)
    assert len(app.image) > images_before


def test_suspected_label_errors_list_the_most_suspect_first_with_every_models_answer(manifest, titles, test_labels):
    app = page("explore").run()

    assert_no_exception(app)
    cards = [element.value for element in app.tabs[LABELS_TAB].markdown if "test image #" in element.value]
    assert len(cards) == 30 and len(app.tabs[LABELS_TAB].image) == 30
    assert cards[0].startswith("**1.** test image #")
    assert all(all(title in card for title in titles.values()) for card in cards)
    margins = [float(card.split("margin ")[1].split("]")[0]) for card in cards]
    assert margins == sorted(margins)

    app.slider(key="label_issue_count").set_value(10).run()
    assert len(app.tabs[LABELS_TAB].image) == 10


def test_the_explorer_says_so_when_the_insight_artefact_is_missing_or_stale(models_copy, manifest, test_labels):
    (models_copy / INSIGHT_NAME).unlink(missing_ok=True)

    app = page("explore").run()

    assert_no_exception(app)
    assert "python -m digitlab insight" in texts(app.tabs[MAP_TAB].info)
    assert explorer_count(app) > 0, "the rest of the explorer works without it"
    inspect(app)
    app.segmented_control(key="explore_explain").set_value("look-alikes").run()
    assert "Look-alikes are not available" in texts(app.info)

    coordinates, neighbours = np.zeros((len(test_labels), 2)), np.zeros((len(test_labels), 10, 2), dtype=int)
    save_insight(models_copy, coordinates, neighbours, {"source_model": "cnn", "source_sha256": "an older model"})
    stale = page("explore").run()

    assert_no_exception(stale)
    assert "computed from another cnn model" in texts(stale.tabs[MAP_TAB].info)


def test_a_freshly_trained_models_folder_without_the_artefact_still_explores(tiny_models_dir, monkeypatch, test_labels):
    monkeypatch.setenv(settings.MODELS_DIR_VARIABLE, str(tiny_models_dir))

    app = page("explore").run()

    assert_no_exception(app)
    assert f"{tiny_models_dir / INSIGHT_NAME} is missing" in texts(app.tabs[MAP_TAB].info)
    assert len(app.tabs[LABELS_TAB].image) == 30, "label issues need only the stored probabilities"
    inspect(app)
    app.segmented_control(key="explore_explain").set_value("heat maps").run()
    assert_no_exception(app)
    assert any(":gray[saliency" in element.value for element in app.markdown)


def test_a_map_selection_names_each_models_answer_and_lists_mistakes_first(insight, titles, test_labels):
    probabilities = load_test_probabilities()
    read_right = np.all([values.argmax(axis=1) == test_labels for values in probabilities.values()], axis=0)
    app = page("explore").run()
    mistakes = card_indices(app)[:2]
    right = int(np.flatnonzero(read_right)[0])

    selected_on_map(app, [right, *mistakes]).run()

    assert_no_exception(app)
    cards = [element.value for element in app.tabs[MAP_TAB].markdown if "test image #" in element.value]
    shown = [int(card.split("test image #")[1].split("]")[0]) for card in cards]
    assert shown[-1] == right and sorted(shown[:2]) == sorted(mistakes)
    assert all(all(f"{short_name(name)}: **" in card for name in titles) for card in cards)
    assert ":red[✗" in cards[0] and ":red[" not in cards[-1]


def test_the_label_issue_summary_says_what_confident_learning_requires(manifest, titles, test_labels):
    app = page("explore").run()

    assert_no_exception(app)
    (summary,) = [element.value for element in app.tabs[LABELS_TAB].markdown if "ranked by how likely" in element.value]
    assert "confidently on" not in summary
    probabilities = load_test_probabilities()
    issues = find_label_issues(consensus(probabilities, independent_models(probabilities)), test_labels)
    flagged, confident = int(issues.flagged.sum()), int(issues.confidently_flagged.sum())
    assert f"another digit than the label on **{flagged}** test images" in summary
    assert f"Confident learning flags **{confident or 'none'}** of them" in summary
    assert f"({issues.thresholds.min():.1%} to {issues.thresholds.max():.1%} here)" in summary


def test_the_explorer_shows_inside_each_model_for_the_inspected_image(manifest):
    app = inspect(page("explore").run())
    app.segmented_control(key="explore_explain").set_value("inside the models").run()

    assert_no_exception(app)
    (dialog,) = dialogs(app._tree)
    assert [spec["layout"]["title"]["text"] for spec in channel_grid_specs(app)] == [
        "Block 1 · 16 strongest of 32 channels, 24x24 each",
        "Block 2 · 16 strongest of 64 channels, 8x8 each",
    ]
    assert any("closest duel for this drawing" in element.value for element in dialog.caption)


def test_the_draw_page_shows_inside_each_model_for_an_uploaded_digit(manifest):
    app = page("draw").run()
    app.file_uploader[0].set_value(("7.png", digit_image_png("7"), "image/png"))
    app.run()
    assert not app.tabs or "CNN: feature maps" not in [tab.label for tab in app.tabs]

    app.toggle(key="inside-uploaded").set_value(True).run()

    assert_no_exception(app)
    assert [tab.label for tab in app.tabs][-3:] == ["CNN: feature maps", "MLP: hidden units", "SVM: support vectors"]
    cnn, mlp, svm = app.tabs[-3:]
    first, second = channel_grid_specs(app)
    assert first["layout"]["title"]["text"] == "Block 1 · 16 strongest of 32 channels, 24x24 each"
    assert second["layout"]["title"]["text"] == "Block 2 · 16 strongest of 64 channels, 8x8 each"
    # Each map is labelled and clickable: nine invisible points per channel carry its number.
    channels = [annotation["text"] for annotation in first["layout"]["annotations"]]
    assert len(channels) == 16 and all(label.startswith("ch ") for label in channels)
    (targets,) = [trace for trace in first["data"] if trace["type"] == "scatter"]
    assert [point[0] for point in targets["customdata"][::9]] == [int(label[3:]) for label in channels]
    # The first channel is chosen until another is: its map is framed, and its driving pixels are shown.
    assert len(first["layout"]["shapes"]) == 1 and "shapes" not in second["layout"]
    assert f"What drives channel {channels[0][3:]}" in str(cnn.image[-1].proto)
    assert "units that push hardest towards **" in texts(mlp.caption)
    # The dense layer's and the MLP's bars say what their axes are: one bar per unit, its height the activation.
    unit_charts = [spec for spec in plotly_specs(app) if spec["data"][0].get("hovertemplate", "").startswith("unit ")]
    assert unit_charts
    for spec in unit_charts:
        assert spec["layout"]["xaxis"]["title"]["text"] == "unit"
        assert spec["layout"]["yaxis"]["title"]["text"] == "activation"
    assert "closest duel for this drawing is **" in texts(svm.caption)
    readings = {metric.label: metric.value for metric in app.metric}
    svm_title = next(title for title in readings if "support vector" in title.lower())
    assert f"**{readings[svm_title]} against" in texts(svm.caption)

    channel = int(second["layout"]["annotations"][-1]["text"][3:])
    app.selectbox(key="inside-channel-uploaded").set_value(("block2_relu2", channel)).run()

    assert_no_exception(app)
    first, second = channel_grid_specs(app)
    assert "shapes" not in first["layout"] and len(second["layout"]["shapes"]) == 1
    assert f"What drives channel {channel}" in str(app.tabs[-3].image[-1].proto)


def test_the_draw_page_shows_the_smallest_change_that_flips_each_model(manifest, titles):
    app = page("draw").run()
    app.file_uploader[0].set_value(("7.png", digit_image_png("7"), "image/png"))
    app.run()

    app.toggle(key="flip-uploaded").set_value(True).run()

    assert_no_exception(app)
    readings = {metric.label: metric.value for metric in app.metric}
    flipped = {
        element.value.split("**")[1]: element.value
        for element in app.markdown
        if "turns" in element.value or "no change up to" in element.value
    }
    assert set(flipped) == set(titles.values())
    assert all(f"turns {readings[title]} into" in text or "no change" in text for title, text in flipped.items())
    # The networks are attacked along their own gradient, which always finds a flip by eps 0.5.
    for name in ("mlp", "cnn"):
        assert f"turns {readings[titles[name]]} into" in flipped[titles[name]]
    # The shipped CNN's card reads at two sizes, the search at one, and the caption says so for it alone.
    caption = next(element.value for element in app.caption if "Projected gradient descent" in element.value)
    assert f"The {titles['cnn']}'s card shows it read at 100% and 85%" in caption
    assert caption.count("searched and read at the drawing's own size only") == 1


def test_the_label_issue_summary_spells_out_counts_of_none_and_of_one():
    from digitlab.insight.label_issues import LabelIssues
    from ui.explorer_view import label_issues_summary

    def issues(flagged: list[bool], confident: list[bool]) -> LabelIssues:
        count = len(flagged)
        return LabelIssues(
            ranking=np.arange(count),
            margin=np.zeros(count),
            suggested=np.zeros(count, dtype=int),
            flagged=np.array(flagged),
            confidently_flagged=np.array(confident),
            thresholds=np.linspace(0.9, 0.99, 10),
        )

    none = label_issues_summary(issues([False, False], [False, False]), ["A", "B"])
    assert "on **no** test images. Confident learning flags **none** of them" in none
    one = label_issues_summary(issues([True, False], [False, False]), ["A", "B"])
    assert "on **1** test image. Confident learning flags **none** of it" in one
    two = label_issues_summary(issues([True, True], [True, False]), ["A", "B"])
    assert "on **2** test images. Confident learning flags **1** of them" in two
