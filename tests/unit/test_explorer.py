import numpy as np
import pytest

from digitlab.insight.explorer import (
    MistakeQuery,
    cell_indices,
    find_mistakes,
    hardness,
    mistake_indices,
    order_indices,
    paginate,
    predicted_digits,
    readings,
    right_counts,
    sample_indices,
    top_predictions,
    usable_probabilities,
    view_csv,
)


def one_hot(digits, confidence):
    """Probability rows that put ``confidence`` on each digit and spread the rest evenly."""
    rows = np.full((len(digits), 10), 0.0)
    for row, (digit, sure) in enumerate(zip(digits, confidence, strict=True)):
        rows[row] = (1 - sure) / 9
        rows[row, digit] = sure
    return rows.astype(np.float32)


# Six test images; model "a" is wrong on 1, 2, 3 and 5, "b" on 2, 3 and 4, "c" on 3.
LABELS = np.array([0, 1, 2, 3, 4, 5])
PROBABILITIES = {
    "a": one_hot([0, 7, 8, 9, 4, 3], [0.9, 0.6, 0.95, 0.5, 0.9, 0.8]),
    "b": one_hot([0, 1, 8, 8, 9, 5], [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]),
    "c": one_hot([0, 1, 2, 9, 4, 5], [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]),
}


def test_any_lists_every_mistake_most_confident_first():
    found = find_mistakes(LABELS, PROBABILITIES, MistakeQuery("a"))

    assert found.tolist() == [2, 5, 1, 3]


def test_index_order_lists_mistakes_by_test_index():
    found = find_mistakes(LABELS, PROBABILITIES, MistakeQuery("a", order="index"))

    assert found.tolist() == [1, 2, 3, 5]


def test_only_this_model_keeps_images_every_other_model_gets_right():
    found = find_mistakes(LABELS, PROBABILITIES, MistakeQuery("a", others="only", order="index"))

    assert found.tolist() == [1, 5]


def test_all_models_wrong_keeps_images_no_model_gets_right():
    found = find_mistakes(LABELS, PROBABILITIES, MistakeQuery("a", others="all"))

    assert found.tolist() == [3]


def test_models_disagree_drops_mistakes_every_model_shares():
    probabilities = {"a": PROBABILITIES["a"], "b": one_hot([0, 7, 8, 9, 4, 5], [0.9] * 6)}

    found = find_mistakes(LABELS, probabilities, MistakeQuery("a", others="disagree", order="index"))

    assert found.tolist() == [5]


def test_digit_filters_narrow_the_mistakes():
    assert find_mistakes(LABELS, PROBABILITIES, MistakeQuery("a", true_digit=2)).tolist() == [2]
    assert find_mistakes(LABELS, PROBABILITIES, MistakeQuery("a", predicted_digit=9)).tolist() == [3]
    assert find_mistakes(LABELS, PROBABILITIES, MistakeQuery("b", true_digit=2, predicted_digit=9)).size == 0


def test_a_query_with_an_unknown_filter_or_model_is_refused():
    with pytest.raises(ValueError, match="others"):
        MistakeQuery("a", others="some")
    with pytest.raises(ValueError, match="order"):
        MistakeQuery("a", order="random")
    with pytest.raises(ValueError, match="between 0 and 9"):
        MistakeQuery("a", true_digit=10)
    with pytest.raises(ValueError, match="No probabilities"):
        find_mistakes(LABELS, PROBABILITIES, MistakeQuery("zzz"))


def test_order_indices_breaks_confidence_ties_by_index():
    confidence = np.array([0.5, 0.9, 0.5, 0.9])

    assert order_indices(np.array([3, 2, 1, 0]), confidence, "confidence").tolist() == [1, 3, 0, 2]
    assert order_indices(np.array([3, 0, 2]), confidence, "index").tolist() == [0, 2, 3]


def test_cell_indices_lists_one_confusion_cell():
    predicted = predicted_digits(PROBABILITIES)["b"]

    assert cell_indices(LABELS, predicted, 3, 8).tolist() == [3]
    assert cell_indices(LABELS, predicted, 0, 0).tolist() == [0]
    assert cell_indices(LABELS, predicted, 0, 1).size == 0


@pytest.mark.parametrize(
    ("total", "number", "expected"),
    [
        (50, 1, (1, 3, 0, 20)),
        (50, 3, (3, 3, 40, 50)),
        (50, 9, (3, 3, 40, 50)),
        (50, 0, (1, 3, 0, 20)),
        (0, 1, (1, 1, 0, 0)),
        (40, 2, (2, 2, 20, 40)),
    ],
)
def test_paginate_clamps_and_slices(total, number, expected):
    page = paginate(total, number, per_page=20)

    assert (page.number, page.count, page.start, page.stop) == expected


def test_paginate_refuses_empty_pages():
    with pytest.raises(ValueError):
        paginate(10, 1, per_page=0)


def test_top_predictions_are_the_most_probable_digits_in_order():
    row = np.array([0.05, 0.1, 0.6, 0.0, 0.0, 0.2, 0.0, 0.05, 0.0, 0.0])

    assert top_predictions(row) == [(2, pytest.approx(0.6)), (5, pytest.approx(0.2)), (1, pytest.approx(0.1))]
    assert [digit for digit, _ in top_predictions(row, k=5)] == [2, 5, 1, 0, 7]


def test_top_predictions_needs_ten_classes():
    with pytest.raises(ValueError):
        top_predictions(np.ones(3) / 3)


def test_readings_mark_each_model_right_or_wrong():
    result = readings(PROBABILITIES, index=1, label=1)

    assert [(reading.model, reading.digit, reading.correct) for reading in result] == [
        ("a", 7, False),
        ("b", 1, True),
        ("c", 1, True),
    ]
    assert result[0].confidence == pytest.approx(0.6)
    assert len(result[0].top) == 3


def test_sample_indices_are_distinct_and_repeatable():
    first = sample_indices(10_000, 24, seed=3)

    assert len(set(first.tolist())) == 24
    assert first.max() < 10_000
    assert np.array_equal(first, sample_indices(10_000, 24, seed=3))
    assert not np.array_equal(first, sample_indices(10_000, 24, seed=4))
    assert len(sample_indices(5, 24, seed=0)) == 5


def test_usable_probabilities_reports_missing_and_misshapen_arrays():
    stored = {"a": PROBABILITIES["a"], "b": PROBABILITIES["b"][:3], "extra": PROBABILITIES["c"]}

    usable, problems = usable_probabilities(stored, ["a", "b", "c"], image_count=6)

    assert list(usable) == ["a"]
    assert len(problems) == 2
    assert "shape (3, 10)" in problems[0]
    assert "No stored test probabilities for c" in problems[1]


def test_hardness_is_one_minus_the_mean_top_two_margin():
    probabilities = {
        "sure": np.array([[1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0]]),
        "torn": np.array([[0.6, 0.4, 0, 0, 0, 0, 0, 0, 0, 0], [0.5, 0.3, 0.2, 0, 0, 0, 0, 0, 0, 0]]),
    }

    # Image 0: margins 1.0 and 0.2; image 1: margins 0.0 and 0.2.
    assert hardness(probabilities) == pytest.approx([1 - 0.6, 1 - 0.1])


def test_mistakes_sort_hardest_first_and_stay_within_a_region():
    scores = hardness(PROBABILITIES)
    found = find_mistakes(LABELS, PROBABILITIES, MistakeQuery("a", order="hardness"))

    assert sorted(found.tolist()) == [1, 2, 3, 5]
    assert list(scores[found]) == sorted(scores[found], reverse=True)
    assert find_mistakes(LABELS, PROBABILITIES, MistakeQuery("a"), within=np.array([0, 3, 5])).tolist() == [5, 3]
    assert find_mistakes(LABELS, PROBABILITIES, MistakeQuery("a"), within=np.array([], dtype=int)).size == 0


def test_view_csv_has_a_row_per_image_with_every_models_answer_and_the_flags():
    suspect = np.array([False, False, False, True, False, False])
    text = view_csv(np.array([3, 4]), LABELS, PROBABILITIES, {"suspected_label_error": suspect})
    rows = [line.split(",") for line in text.strip().split("\n")]

    assert rows[0] == [
        "index", "label", "a_prediction", "a_confidence", "b_prediction", "b_confidence",
        "c_prediction", "c_confidence", "hardness", "all_wrong", "disagree", "suspected_label_error",
    ]  # fmt: skip
    assert rows[1][:8] == ["3", "3", "9", "0.5000", "8", "0.9000", "9", "0.9000"]
    # Image 3: every model is wrong, and they disagree (9, 8, 9); image 4: only b is wrong.
    assert rows[1][9:] == ["1", "1", "1"]
    assert rows[2][:3] == ["4", "4", "4"] and rows[2][9:] == ["0", "1", "0"]
    assert float(rows[1][8]) == pytest.approx(hardness(PROBABILITIES)[3], abs=1e-4)


def test_mistake_indices_lists_each_models_wrong_images():
    labels = np.array([3, 1, 4, 1, 5])
    predicted = {"a": np.array([3, 7, 4, 1, 6]), "b": np.array([3, 1, 4, 1, 5])}
    mistakes = mistake_indices(predicted, labels)
    assert mistakes["a"].tolist() == [1, 4]
    assert mistakes["b"].tolist() == []


def test_right_counts_only_counts_the_given_images():
    labels = np.array([3, 1, 4, 1, 5])
    predicted = {"a": np.array([3, 7, 4, 1, 6]), "b": np.array([0, 1, 4, 1, 5])}
    assert right_counts(predicted, labels, np.array([0, 1, 4])) == {"a": 1, "b": 2}
