import numpy as np
import pytest

from digitlab.insight.agreement import disagreement_mask, tally
from digitlab.models.base import Reading


def prediction(model, digit):
    return Reading(model, digit, 0.9, (0.01,) * 10)


def test_tally_of_identical_digits_is_unanimous():
    agreement = tally([prediction("svm", 7), prediction("mlp", 7), prediction("cnn", 7)])

    assert agreement.unanimous
    assert agreement.leading_digit == 7
    assert agreement.votes == {7: ["svm", "mlp", "cnn"]}


def test_tally_orders_digits_by_votes_then_by_digit():
    agreement = tally([prediction("svm", 9), prediction("mlp", 4), prediction("cnn", 4), prediction("ens", 1)])

    assert not agreement.unanimous
    assert list(agreement.votes) == [4, 1, 9]
    assert agreement.votes[4] == ["mlp", "cnn"]
    assert agreement.leading_digit == 4


def test_tally_refuses_an_empty_list():
    with pytest.raises(ValueError, match="empty"):
        tally([])


def test_disagreement_mask_flags_images_where_any_model_differs():
    predicted = {"a": np.array([1, 2, 3, 4]), "b": np.array([1, 2, 0, 4]), "c": np.array([1, 5, 3, 4])}

    assert disagreement_mask(predicted).tolist() == [False, True, True, False]


def test_a_single_model_never_disagrees():
    assert not disagreement_mask({"only": np.array([3, 1, 4])}).any()


def test_disagreement_mask_needs_a_model():
    with pytest.raises(ValueError):
        disagreement_mask({})
