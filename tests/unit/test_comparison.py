import numpy as np
import pytest

from digitlab.insight.comparison import (
    confusion_matrix,
    describe_complexity,
    history_rows,
    largest_confusion,
    needs_log_scale,
    own_costs_note,
    per_class_rows,
    row_normalised,
    summary_rows,
)
from digitlab.manifest import Manifest, ModelEntry


def entry(accuracy=0.98, complexity=None, history=None):
    """An entry as the manifest records it (JSON), for tests to damage before reading it."""
    matrix = np.diag([10] * 10)
    matrix[3, 5] = 2
    recorded = {
        "title": "A model",
        "artifact": "model.keras",
        "sha256": "0" * 64,
        "size_bytes": 2_500_000,
        "training_seconds": 12.5,
        "complexity": complexity if complexity is not None else {"parameters": 1000},
        "metrics": {
            "accuracy": accuracy,
            "errors": 2,
            "precision_macro": 0.97,
            "recall_macro": 0.96,
            "f1_macro": 0.965,
            "per_class": {
                "precision": [0.9] * 10,
                "recall": [0.5 + digit / 20 for digit in range(10)],
                "f1": [0.8] * 10,
                "support": [10] * 10,
            },
            "confusion_matrix": matrix.tolist(),
        },
        "timing": {"batch_images": 10_000, "batch_seconds": 2.0, "single_image_ms": 0.75},
    }
    if history is not None:
        recorded["history"] = history
    return recorded


def manifest(**models) -> Manifest:
    return Manifest.from_json({"models": models})


def read(recorded) -> ModelEntry:
    return ModelEntry.from_json("a", recorded)


def test_summary_rows_compute_derived_figures():
    recorded = manifest(svm=entry(complexity={"support_vectors": 4103}), cnn=entry(0.99))

    rows, problems = summary_rows(recorded)

    assert problems == []
    assert [row["model"] for row in rows] == ["svm", "cnn"]
    svm, cnn = rows
    assert svm["complexity"] == "4,103 support vectors"
    assert cnn["complexity"] == "1,000 parameters"
    assert cnn["accuracy"] == 0.99
    assert svm["seconds_per_10k"] == pytest.approx(2.0)
    assert svm["size_mb"] == pytest.approx(2.5)
    assert svm["ms_per_image"] == 0.75


def test_describe_complexity_names_every_kind_of_part():
    assert describe_complexity({"member_models": 3}) == "3 member models"
    assert describe_complexity({}) == "unknown"


def test_summary_rows_report_incomplete_entries_and_keep_the_rest():
    no_timing, short_recall, no_matrix = entry(), entry(), entry()
    del no_timing["timing"]
    short_recall["metrics"]["per_class"]["recall"] = [0.9] * 9
    del no_matrix["metrics"]["confusion_matrix"]
    models = manifest(good=entry(), no_timing=no_timing, short_recall=short_recall, no_matrix=no_matrix)

    rows, problems = summary_rows(models)

    assert [row["model"] for row in rows] == ["good"]
    assert len(problems) == 3
    assert "timing" in problems[0] and "recall has 9" in problems[1] and "confusion_matrix" in problems[2]


def test_per_class_rows_are_long_form():
    rows = per_class_rows(manifest(a=entry(), b=entry()), ["b"], "recall")

    assert len(rows) == 10
    assert rows[4] == {"model": "b", "title": "A model", "digit": 4, "recall": pytest.approx(0.7)}


def test_per_class_rows_refuse_unknown_metrics():
    with pytest.raises(ValueError):
        per_class_rows(manifest(a=entry()), ["a"], "accuracy")


def test_confusion_matrix_is_checked_and_row_normalised():
    matrix = confusion_matrix(read(entry()))

    assert matrix.shape == (10, 10) and matrix[3, 5] == 2
    shares = row_normalised(matrix)
    assert shares[3, 3] == pytest.approx(10 / 12)
    assert np.allclose(shares.sum(axis=1), 1.0)
    with pytest.raises(ValueError):
        confusion_matrix(read({**entry(), "metrics": {"confusion_matrix": [[1, 2], [3, 4]]}}))


def test_largest_confusion_is_the_most_common_mistake_not_a_correct_cell():
    assert largest_confusion(confusion_matrix(read(entry()))) == (3, 5)


def test_row_normalised_leaves_empty_rows_at_zero():
    shares = row_normalised(np.array([[0, 0], [1, 3]]))

    assert shares.tolist() == [[0.0, 0.0], [0.25, 0.75]]


def test_history_rows_cover_train_and_validation_loss_and_accuracy():
    history = {"loss": [1.0, 0.5], "val_loss": [1.2, 0.7], "accuracy": [0.6, 0.8], "val_accuracy": [0.5, 0.75]}

    rows = history_rows(read(entry(history=history)).history)

    assert len(rows) == 8
    assert {"epoch": 2, "quantity": "accuracy", "split": "validation", "value": 0.75} in rows
    assert history_rows(read(entry()).history) == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1.0, 2.0, 5.0], False), ([0.5, 100.0], True), ([None, 0.0, 3.0], False), ([4.0], False)],
)
def test_needs_log_scale_when_values_span_orders_of_magnitude(values, expected):
    assert needs_log_scale(values) is expected


def test_a_combining_models_costs_are_said_to_leave_out_its_members():
    titles = {"svm": "SVM", "mlp": "MLP", "cnn": "CNN", "ensemble": "Ensemble"}

    note = own_costs_note(["svm", "ensemble"], titles)

    assert note == (
        "For the Ensemble, training time and size on disk count only what it adds to the models it combines "
        "(SVM, MLP, CNN), which it also needs to run."
    )
    assert own_costs_note(["svm", "mlp", "cnn"], titles) == ""
