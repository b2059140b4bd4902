"""The shipped split network: intact, and telling two touching digits from one on digits it never trained on."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from digitlab import settings
from digitlab.models.splitter import SPLITTER_RECORD, load_splitter, read_splitter_record
from tests.support import touching_pair

SHIPPED = settings.DEFAULT_MODELS_DIR


@pytest.fixture(scope="module")
def splitter():
    return load_splitter(SHIPPED)


def test_the_split_network_is_shipped_with_its_record():
    assert (SHIPPED / SPLITTER_RECORD).exists()
    record = read_splitter_record(SHIPPED)
    assert record.training["validation_auroc"] >= 0.98


def test_two_touching_test_digits_score_above_single_ones(splitter, mnist_test):
    images, _ = mnist_test
    singles = images[:500]
    pairs = np.stack([touching_pair(images[500 + 2 * k], images[501 + 2 * k]) for k in range(500)])
    scores = np.concatenate([splitter.score(pairs), splitter.score(singles)])
    several = np.concatenate([np.ones(len(pairs)), np.zeros(len(singles))])
    # MNIST's test digits, put together more simply than the training regions were: the network generalises.
    assert roc_auc_score(several, scores) >= 0.97
