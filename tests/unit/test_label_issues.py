import numpy as np
import pytest

from digitlab.insight.label_issues import consensus, find_label_issues


def noisy_probabilities(count: int = 200, seed: int = 0):
    """Confident, correct probabilities for ``count`` images, then three labels flipped to another digit."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 10, count)
    probabilities = rng.uniform(0, 0.02, (count, 10))
    probabilities[np.arange(count), truth] = rng.uniform(0.85, 0.99, count)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    labels = truth.copy()
    flipped = np.array([5, 50, 150])
    labels[flipped] = (truth[flipped] + 3) % 10
    return probabilities, labels, truth, flipped


def test_flipped_labels_rank_first_and_are_flagged_with_the_true_digit_suggested():
    probabilities, labels, truth, flipped = noisy_probabilities()

    issues = find_label_issues(probabilities, labels)

    assert set(issues.ranking[:3].tolist()) == set(flipped.tolist())
    assert np.flatnonzero(issues.flagged).tolist() == sorted(flipped.tolist())
    assert np.flatnonzero(issues.confidently_flagged).tolist() == sorted(flipped.tolist())
    assert issues.suggested[flipped].tolist() == truth[flipped].tolist()
    assert (issues.margin[flipped] < 0).all()
    assert sorted(issues.ranking.tolist()) == list(range(len(labels)))


def test_a_hesitant_reading_of_another_digit_is_flagged_but_not_confidently():
    probabilities, labels, _, _ = noisy_probabilities()
    probabilities[7] = 0.05
    probabilities[7, [4, 6]] = [0.2, 0.4]
    labels[7] = 4

    issues = find_label_issues(probabilities, labels)

    assert issues.flagged[7] and issues.suggested[7] == 6
    assert not issues.confidently_flagged[7], "0.4 is far below digit 6's threshold"
    assert issues.margin[7] == pytest.approx(-0.2)


def test_an_image_read_as_its_label_is_not_flagged_even_if_another_digit_reaches_its_threshold():
    # Image 9 lies off the diagonal of the confident joint (digit 6 reaches its lowered threshold), but the
    # models still read its label first, so neither flag may name it.
    probabilities, labels, _, _ = noisy_probabilities()
    labels[9] = 4
    probabilities[9] = 0
    probabilities[9, [4, 6]] = [0.5, 0.5 - 1e-3]
    probabilities[labels == 6, 6] = 0.4

    issues = find_label_issues(probabilities, labels)

    assert issues.thresholds[6] < 0.5
    assert not issues.flagged[9] and not issues.confidently_flagged[9]


def test_thresholds_margin_ranking_and_consensus_on_a_hand_made_case():
    probabilities = np.zeros((4, 10))
    probabilities[0, [0, 1]] = [0.8, 0.2]
    probabilities[1, [0, 1]] = [0.6, 0.4]
    probabilities[2, [1, 2]] = [0.7, 0.3]
    probabilities[3, [0, 1]] = [0.6, 0.4]
    labels = np.array([0, 0, 2, 0])

    issues = find_label_issues(probabilities, labels)

    assert issues.thresholds[0] == pytest.approx(2 / 3) and issues.thresholds[2] == pytest.approx(0.3)
    assert issues.thresholds[5] > 1, "a digit no image is labelled with gets a threshold nothing reaches"
    assert issues.margin == pytest.approx([0.6, 0.2, -0.4, 0.2])
    assert issues.ranking.tolist() == [2, 1, 3, 0], "equal margins keep index order"
    assert issues.suggested.tolist() == [0, 0, 1, 0]
    mean = consensus({"a": probabilities, "b": np.roll(probabilities, 1, axis=0)}, ["a", "b"])
    assert mean[0] == pytest.approx((probabilities[0] + probabilities[-1]) / 2)


def test_mismatched_shapes_or_labels_are_refused():
    with pytest.raises(ValueError, match="probabilities"):
        find_label_issues(np.zeros((3, 9)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="probabilities"):
        find_label_issues(np.zeros((3, 10)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="digits"):
        find_label_issues(np.zeros((2, 10)), np.array([0, 10]))
    with pytest.raises(ValueError, match="two different digits"):
        find_label_issues(np.full((3, 10), 0.1), np.array([4, 4, 4]))
    with pytest.raises(ValueError, match="at least one"):
        consensus({})
