"""The My digits page headless: deleting a saved drawing asks first, and keeping it changes nothing.

Each test points ``DIGITLAB_DB`` at a database file in its own temporary folder.
"""

import pytest

from digitlab import settings
from digitlab.lab.feedback import FeedbackStore
from tests.app.apptest import assert_no_exception, page, texts
from tests.support import save


@pytest.fixture
def saved(tmp_path, monkeypatch):
    """Two saved drawings, a 1 and a 7, in a database of the test's own; returns the path and their ids."""
    path = tmp_path / "feedback.sqlite3"
    monkeypatch.setenv(settings.DATABASE_VARIABLE, str(path))
    with FeedbackStore(path) as store:
        ids = [save(store, label=1, svm=1, cnn=1, seed=1), save(store, label=7, svm=1, cnn=7, seed=2)]
    return path, ids


def saved_ids(database) -> list[int]:
    with FeedbackStore(database) as store:
        return sorted(drawing.id for drawing in store.drawings())


def test_delete_asks_first_and_keep_leaves_the_drawing(saved):
    database, (first, second) = saved
    app = page("my_digits").run()

    app.button(key=f"delete-{second}").click().run()

    assert_no_exception(app)
    assert saved_ids(database) == [first, second], "one click on Delete must not delete anything yet"
    assert f"Delete drawing #{second} and its readings? This cannot be undone." in texts(app.warning)
    assert app.button(key=f"confirm-delete-{second}").label == "Delete"
    # Only the drawing asked about has the question; the other keeps its plain Delete button.
    assert app.button(key=f"delete-{first}").label == "Delete"

    app.button(key=f"keep-{second}").click().run()

    assert_no_exception(app)
    assert saved_ids(database) == [first, second]
    assert not app.warning
    assert "2 saved drawings" in texts(app.markdown)


def test_confirming_the_delete_removes_the_drawing(saved):
    database, (first, second) = saved
    app = page("my_digits").run()
    app.button(key=f"delete-{second}").click().run()

    app.button(key=f"confirm-delete-{second}").click().run()

    assert_no_exception(app)
    assert saved_ids(database) == [first]
    assert f"Drawing #{second} was deleted" in texts(app.success)
    assert "1 saved drawing" in texts(app.markdown)
    assert not app.warning
