"""Reliability bins, expected calibration error and AUROC, on hand-made probabilities whose figures are known."""

import math

import numpy as np
import pytest

from digitlab.insight import calibration


def answers(confidences: list[float], right: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities over ten digits that put ``confidence`` on digit 0 and share the rest evenly, and labels.

    Each confidence is above 10 %, so every answer is digit 0; a right one is labelled 0 and a wrong one 1.
    """
    confidences = np.asarray(confidences, dtype=np.float64)
    probabilities = np.repeat(((1 - confidences) / 9)[:, None], 10, axis=1)
    probabilities[:, 0] = confidences
    labels = np.where(right, 0, 1)
    return probabilities, labels


def test_a_perfectly_calibrated_model_has_no_calibration_error():
    # Seven of ten answers at 70 % are right, and nine of ten at 90 %.
    probabilities, labels = answers([0.7] * 10 + [0.9] * 10, [True] * 7 + [False] * 3 + [True] * 9 + [False])

    assert calibration.expected_calibration_error(probabilities, labels) == pytest.approx(0.0, abs=1e-12)


def test_an_overconfident_model_has_the_weighted_gap_as_its_calibration_error():
    # Half the answers are sure (100 %) and three in four right: a gap of 25 points.
    # The other half say 55 % and one in four is right: a gap of 30 points.
    probabilities, labels = answers([1.0] * 4 + [0.55] * 4, [True, True, True, False, True, False, False, False])

    assert calibration.expected_calibration_error(probabilities, labels) == pytest.approx(0.5 * 0.25 + 0.5 * 0.30)


def test_reliability_bins_hold_each_bins_mean_confidence_accuracy_and_count():
    probabilities, labels = answers([1.0, 1.0, 0.55, 0.58, 0.12], [True, False, True, True, False])

    diagram = calibration.reliability(probabilities, labels)

    assert len(diagram.edges) == calibration.BIN_COUNT + 1 == 16
    # 1.0 falls in the last bin, (14/15, 1]; 0.55 and 0.58 in (8/15, 9/15]; 0.12 in (1/15, 2/15].
    assert list(np.flatnonzero(diagram.counts)) == [1, 8, 14]
    assert list(diagram.counts[[1, 8, 14]]) == [1, 2, 2]
    assert diagram.confidence[8] == pytest.approx(0.565)
    assert list(diagram.accuracy[[1, 8, 14]]) == [0.0, 1.0, 0.5]
    assert math.isnan(diagram.confidence[0]) and math.isnan(diagram.accuracy[0])


def test_auroc_is_one_when_every_wrong_answer_is_less_sure_than_every_right_one():
    probabilities, labels = answers([0.9, 0.8, 0.7, 0.6, 0.55], [True, True, True, False, False])

    assert calibration.confidence_auroc(probabilities, labels) == 1.0


def test_auroc_counts_the_pairs_a_right_answer_is_surer_of_than_a_wrong_one():
    # Right at 90 % and 60 %, wrong at 70 %: one of the two pairs is in order.
    probabilities, labels = answers([0.9, 0.6, 0.7], [True, True, False])
    assert calibration.confidence_auroc(probabilities, labels) == pytest.approx(0.5)

    # The same confidence for every answer tells nothing: ties count half.
    probabilities, labels = answers([0.98] * 4, [True, True, True, False])
    assert calibration.confidence_auroc(probabilities, labels) == pytest.approx(0.5)


def test_auroc_is_undefined_when_there_is_no_wrong_answer():
    probabilities, labels = answers([0.9, 0.8], [True, True])

    assert math.isnan(calibration.confidence_auroc(probabilities, labels))


def test_probabilities_and_labels_must_match():
    probabilities, labels = answers([0.9, 0.8], [True, True])

    with pytest.raises(ValueError, match="one row of probabilities per label"):
        calibration.expected_calibration_error(probabilities, labels[:1])


def test_rows_give_every_models_figures_and_its_filled_bins():
    sure, labels = answers([1.0] * 4, [True, True, True, False])
    calibrated, _ = answers([0.75] * 4, [True, True, True, False])
    models = {"sure": sure, "calibrated": calibrated}

    rows = calibration.calibration_rows(models, labels)
    bins = calibration.reliability_rows(models, labels)

    assert [row["model"] for row in rows] == ["sure", "calibrated"]
    assert [row["ece"] for row in rows] == pytest.approx([0.25, 0.0])
    assert [row["accuracy"] for row in rows] == pytest.approx([0.75, 0.75])
    assert [row["mean_confidence"] for row in rows] == pytest.approx([1.0, 0.75])
    assert [row["auroc"] for row in rows] == pytest.approx([0.5, 0.5])
    assert [(row["model"], row["count"], row["accuracy"]) for row in bins] == [
        ("sure", 4, 0.75),
        ("calibrated", 4, 0.75),
    ]
    assert bins[1]["low"] < bins[1]["confidence"] <= bins[1]["high"]
