"""The feedback pages headless: saving a reading from the Draw page, and the My digits page.

Each test points ``DIGITLAB_DB`` at a database file in its own temporary folder.
"""

import numpy as np
import pytest

from digitlab import settings
from digitlab.formatting import indefinite_article
from digitlab.lab.feedback import CSV_NAME, DrawingFilter, FeedbackStore
from digitlab.persistence import read_manifest
from tests.app.apptest import (
    assert_no_exception,
    button_labelled,
    confusion_specs,
    digit_image_png,
    page,
    texts,
)
from tests.support import save
from ui import saved_drawings


@pytest.fixture
def database(tmp_path, monkeypatch):
    path = tmp_path / "feedback.sqlite3"
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(path))
    return path


@pytest.fixture
def filled(database):
    """Three saved drawings: a 1 both models read, a 7 the SVM misread, and an uploaded 7 the CNN misread."""
    with FeedbackStore(database) as store:
        ids = [
            save(store, label=1, svm=1, cnn=1, seed=1),
            save(store, label=7, svm=1, cnn=7, seed=2),
            save(store, label=7, svm=7, cnn=2, seed=3, source="uploaded"),
        ]
    return ids


def test_my_digits_without_a_database_shows_how_to_save_one(database):
    app = page("my_digits").run()

    assert_no_exception(app)
    assert "No saved drawings yet" in texts(app.info)
    assert not app.tabs
    assert not database.exists(), "viewing the page must not create the database"


def test_my_digits_with_an_empty_database_shows_how_to_save_one(database):
    FeedbackStore(database).close()

    app = page("my_digits").run()

    assert_no_exception(app)
    assert "No saved drawings yet" in texts(app.info)


def test_my_digits_reports_a_damaged_database_in_one_sentence_and_leaves_it_alone(database):
    damaged = b"this is not a database " * 300
    database.write_bytes(damaged)

    app = page("my_digits").run()

    assert_no_exception(app)
    assert "Saved drawings cannot be used" in texts(app.error)
    assert "damaged" in texts(app.error)
    assert database.read_bytes() == damaged


def model_titles() -> dict[str, str]:
    """The titles the pages show for the test's model names: the manifest's, else the names themselves."""
    models = read_manifest().models
    return {name: models[name].title_or(name) if name in models else name for name in ("svm", "cnn")}


def source_pills(app):
    (pills,) = [group for group in app.get("button_group") if group.key == "filter-sources"]
    return pills


def test_my_digits_lists_filters_and_scores_the_saved_drawings(filled):
    titles = model_titles()
    app = page("my_digits").run()

    assert_no_exception(app)
    assert "3 saved drawings" in texts(app.markdown)
    assert [tab.label.split(" ", 1)[1] for tab in app.tabs] == ["Drawings", "Accuracy", "Export"]
    assert [button.label for button in app.button if button.label == "Delete"] == ["Delete"] * 3
    table = app.dataframe[0].value
    assert dict(zip(table["model"], table["correct"], strict=True)) == {titles["svm"]: 2, titles["cnn"]: 2}
    assert len(confusion_specs(app)) == 2
    assert sorted(button.label for button in app.download_button) == sorted(
        ["feedback-images-idx3-ubyte.gz", "feedback-labels-idx1-ubyte.gz", "feedback.csv"]
    )

    # Both sources start chosen, as every drawing is listed.
    assert list(source_pills(app).value) == ["drawn", "uploaded"]

    app.multiselect(key="filter-digits").set_value([7]).run()
    assert "2 matching drawings" in texts(app.caption)

    source_pills(app).set_value(["uploaded"]).run()
    assert "1 matching drawing," in texts(app.caption)
    source_pills(app).set_value(["drawn", "uploaded"]).run()

    app.selectbox(key="filter-misread").set_value("svm").run()
    assert "1 matching drawing," in texts(app.caption)
    assert dict(zip(app.dataframe[0].value["model"], app.dataframe[0].value["correct"], strict=True)) == {
        titles["svm"]: 0,
        titles["cnn"]: 1,
    }


def test_my_digits_builds_the_export_only_when_a_download_is_clicked(filled, database, monkeypatch):
    built = []
    for method in ("export_files", "idx_files", "csv_text", "dataset"):
        original = getattr(FeedbackStore, method)
        monkeypatch.setattr(
            FeedbackStore,
            method,
            lambda self, *arguments, _method=method, _original=original, **keywords: (
                built.append(_method) or _original(self, *arguments, **keywords)
            ),
        )

    app = page("my_digits").run()
    app.multiselect(key="filter-digits").set_value([7]).run()

    assert_no_exception(app)
    assert len(app.download_button) == 3
    assert built == [], "rendering or filtering the page must not build the export files"
    with FeedbackStore(database) as store:
        assert saved_drawings._export_file(store, DrawingFilter(labels=(7,)), CSV_NAME, "csv") == (
            store.csv_text(DrawingFilter(labels=(7,))).encode()
        )


def test_my_digits_relabels_and_deletes(filled, database):
    first, second, third = filled
    app = page("my_digits").run()

    app.selectbox(key=f"relabel-{first}-1").set_value(4).run()

    assert_no_exception(app)
    assert f"Drawing #{first} is now labelled 4" in texts(app.success)
    with FeedbackStore(database) as store:
        assert {drawing.id: drawing.label for drawing in store.drawings()} == {first: 4, second: 7, third: 7}

    app.button(key=f"delete-{second}").click().run()
    app.button(key=f"confirm-delete-{second}").click().run()

    assert_no_exception(app)
    assert f"Drawing #{second} was deleted" in texts(app.success)
    assert "2 saved drawings" in texts(app.markdown)
    with FeedbackStore(database) as store:
        assert [drawing.id for drawing in store.drawings()] == [third, first]


def test_draw_page_saves_an_uploaded_digit_with_the_corrected_label(database, manifest):
    app = page("draw").run()
    app.file_uploader[0].set_value(("7.png", digit_image_png("7"), "image/png"))
    app.run()

    assert_no_exception(app)
    (choice,) = app.pills
    readings = {metric.value for metric in app.metric}
    assert choice.value in {int(value) for value in readings}, "the models' reading is preselected"

    choice.set_value(3)
    button_labelled(app, "Save with this digit").click().run()

    assert_no_exception(app)
    assert "Saved as a **3**" in texts(app.success)
    with FeedbackStore(database) as store:
        (drawing,) = store.drawings()
    assert drawing.label == 3 and drawing.source == "uploaded"
    assert set(drawing.predictions) == set(manifest.models)
    assert drawing.predictions["cnn"].model_version == manifest.models["cnn"].sha256
    assert drawing.model_input.dtype == np.uint8 and drawing.model_input.max() > 0
    # The confirmation replaces the form, so the same drawing is not saved twice.
    assert not app.pills


def test_the_preselected_digit_stays_chosen_when_it_is_clicked_to_confirm_it(database, manifest):
    app = page("draw").run()
    app.file_uploader[0].set_value(("1.png", digit_image_png("1"), "image/png"))
    app.run()
    (choice,) = app.pills
    preselected = choice.value

    # The browser lets a click on the chosen option take the choice back unless the control requires one.
    assert choice.proto.required, "clicking the preselected digit must not leave no digit chosen"
    assert preselected is not None
    button_labelled(app, "Save with this digit").click().run()

    assert_no_exception(app)
    assert "Pick the right digit" not in texts(app.warning)
    assert f"Saved as {indefinite_article(preselected)} **{preselected}**" in texts(app.success)
    with FeedbackStore(database) as store:
        (drawing,) = store.drawings()
    assert drawing.label == preselected
