import json

import numpy as np
import pytest

from digitlab.errors import ModelUnavailableError
from digitlab.models.splitter import (
    SPLITTER_ARTIFACT,
    SPLITTER_RECORD,
    SplitNetwork,
    SplitterRecord,
    load_splitter,
    read_splitter_record,
    write_splitter,
)
from tests.support import touching_pair


@pytest.fixture(scope="module")
def regions(mnist_test):
    images, _ = mnist_test
    singles = images[:400]
    pairs = np.stack([touching_pair(images[400 + 2 * k], images[401 + 2 * k]) for k in range(400)])
    return pairs, singles


@pytest.fixture(scope="module")
def saved(regions, tmp_path_factory):
    pairs, singles = regions
    network = SplitNetwork(epochs=3, seed=0).fit(pairs[:300], singles[:300])
    folder = tmp_path_factory.mktemp("splitter")
    record = write_splitter(network, SplitterRecord(SPLITTER_ARTIFACT, "0" * 64, network.get_params(), {}), folder)
    return network, record, folder


def test_the_network_learns_to_tell_two_digits_from_one(saved, regions):
    network, _, _ = saved
    pairs, singles = regions
    # Regions it did not train on: the network's evidence for "several" is higher for almost every pair.
    pair_scores, single_scores = network.score(pairs[300:]), network.score(singles[300:])
    assert np.mean(pair_scores[:, None] > single_scores[None, :]) > 0.9


def test_the_saved_network_scores_as_it_did_and_its_record_names_its_checksum(saved, regions):
    network, record, folder = saved
    loaded = load_splitter(folder)
    np.testing.assert_allclose(loaded.score(regions[0][:50]), network.score(regions[0][:50]), atol=1e-5)
    assert read_splitter_record(folder) == record
    assert record.sha256 != "0" * 64
    assert loaded.get_params() == network.get_params()


def test_a_network_needs_both_kinds():
    with pytest.raises(ValueError, match="both regions holding several digits and regions holding one"):
        SplitNetwork(epochs=1).fit(np.zeros((4, 28, 28), np.uint8), np.zeros((0, 28, 28), np.uint8))


def test_a_modified_network_is_not_loaded(saved, tmp_path):
    _, record, folder = saved
    for name in (record.artifact, SPLITTER_RECORD):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    with open(tmp_path / record.artifact, "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelUnavailableError, match="does not match its record"):
        load_splitter(tmp_path)
    (tmp_path / record.artifact).unlink()
    with pytest.raises(ModelUnavailableError, match="is missing"):
        load_splitter(tmp_path)


def test_a_missing_or_damaged_record_is_a_sentence(saved, tmp_path):
    with pytest.raises(ModelUnavailableError, match="No split network"):
        read_splitter_record(tmp_path)
    (tmp_path / SPLITTER_RECORD).write_text("{not json")
    with pytest.raises(ModelUnavailableError, match="not a readable split network record"):
        read_splitter_record(tmp_path)
    _, record, _ = saved
    (tmp_path / SPLITTER_RECORD).write_text(json.dumps({**record.to_json(), "sha256": "short"}))
    with pytest.raises(ModelUnavailableError, match="sha256"):
        read_splitter_record(tmp_path)
