"""The SVM's margin calibration: scikit-learn's one-vs-rest values, unchanged predictions, a confidence that ranks."""

import numpy as np
import pytest

from digitlab.insight.calibration import confidence_auroc
from digitlab.models.margins import (
    MINIMUM_LEAD,
    MarginCalibratedSVC,
    margin_matrix,
    one_vs_rest,
    weakest_wins,
    with_confidence,
)
from digitlab.models.svm import SVMClassifier


@pytest.fixture(scope="module")
def fitted_svm(mnist_train):
    """An SVM fitted on 2,000 images that calibrates on 1,000 it never trained on."""
    images, labels = mnist_train
    return SVMClassifier(validation_size=1000, shifted_copies=False).fit(images[:3000], labels[:3000])


def test_one_vs_rest_values_are_scikit_learns(fitted_svm, small_test):
    features = fitted_svm.pipeline[:-1].transform(small_test[0].reshape(len(small_test[0]), -1))
    svc = fitted_svm.pipeline.named_steps["svc"]
    pairwise = svc.decision_function(features)
    assert svc.decision_function_shape == "ovo" and pairwise.shape == (len(features), 45)
    svc.set_params(decision_function_shape="ovr")
    try:
        expected = svc.decision_function(features)
    finally:
        svc.set_params(decision_function_shape="ovo")
    np.testing.assert_allclose(one_vs_rest(pairwise, 10), expected)


def test_the_margin_matrix_is_antisymmetric_and_places_each_pair():
    pairwise = np.arange(1.0, 46.0)[None, :]
    margins = margin_matrix(pairwise, 10)[0]
    np.testing.assert_array_equal(margins, -margins.T)
    assert margins[0, 1] == 1.0 and margins[0, 9] == 9.0 and margins[1, 2] == 10.0 and margins[8, 9] == 45.0


def test_the_weakest_win_is_the_winners_smallest_margin():
    # Three digits: pairs (0, 1), (0, 2), (1, 2). Digit 0 beats 1 by 2 and 2 by 0.5; digit 2 loses both.
    pairwise = np.array([[2.0, 0.5, 1.0], [2.0, 0.5, 1.0]])
    np.testing.assert_array_equal(weakest_wins(pairwise, np.array([0, 1]), 3), [0.5, -2.0])


def test_calibration_keeps_every_prediction_and_ranks_right_above_wrong(fitted_svm, mnist_test):
    images, labels = mnist_test[0][:2000], mnist_test[1][:2000]
    probabilities = fitted_svm.predict_proba(images)
    features = fitted_svm.pipeline[:-1].transform(images.reshape(len(images), -1))
    votes = one_vs_rest(fitted_svm.pipeline.named_steps["svc"].decision_function(features), 10)

    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), votes.argmax(axis=1))
    assert fitted_svm.estimator_.platt_ is not None and fitted_svm.estimator_.platt_.coef_[0, 0] > 0
    top = probabilities.max(axis=1)
    # The temperature-scaled votes gave nearly every image the same confidence; the margin does not.
    assert np.percentile(top, 5) < 0.8 < np.percentile(top, 50)
    assert confidence_auroc(probabilities, labels) > 0.9


def test_calibration_images_without_a_wrong_answer_keep_the_softmax(fitted_svm, mnist_train):
    images, labels = mnist_train
    pipeline = fitted_svm.pipeline
    flat = images[:3000].reshape(3000, -1)
    predicted = pipeline.named_steps["svc"].classes_[
        one_vs_rest(MarginCalibratedSVC(pipeline).pairwise_margins(flat[:50]), 10).argmax(axis=1)
    ]
    calibration = MarginCalibratedSVC(pipeline).fit(flat[:50], predicted)
    assert calibration.platt_ is None
    probabilities = calibration.predict_proba(flat[:50])
    np.testing.assert_array_equal(probabilities.argmax(axis=1), np.searchsorted(calibration.classes_, predicted))


def test_a_low_confidence_keeps_the_winner_first_when_rounded_or_stored_as_float16():
    # The winner (digit 3) has a weak win and one other digit holds almost all the remaining probability.
    probabilities = np.full((1, 10), 1e-6)
    probabilities[0, 7] = 1.0
    calibrated = with_confidence(probabilities, np.array([3]), np.array([0.05]))

    assert calibrated.sum() == pytest.approx(1.0)
    assert calibrated.astype(np.float16).argmax() == 3
    assert np.round(calibrated, 6).argmax() == 3
    assert calibrated[0, 3] - calibrated[0, 7] >= MINIMUM_LEAD - 1e-12
