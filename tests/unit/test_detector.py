import json

import numpy as np
import pytest

from digitlab.data import synthetic
from digitlab.detection import DetectorData, threshold_for, validation_figures
from digitlab.errors import ModelUnavailableError
from digitlab.imaging.preprocess import preprocessed
from digitlab.models.detector import (
    HISTOGRAM_EDGES,
    RECORD_NAME,
    DetectorRecord,
    DigitDetector,
    ScoreHistogram,
    Verdict,
    load_detector,
    read_detector_record,
    write_detector,
)


@pytest.fixture(scope="module")
def small_data(mnist_test) -> DetectorData:
    images, _ = mnist_test
    drawings = synthetic.non_digit_drawings(synthetic.TRAINING_FONTS, 150, seed=0)
    non_digits = [model_input for _, model_input in preprocessed((d.kind, d.image) for d in drawings)]
    non_digits = np.stack([model_input for model_input in non_digits if model_input is not None])
    return DetectorData(
        digits=images[:300],
        digit_sources=np.array(["mnist"] * 150 + ["other"] * 150),
        non_digits=non_digits,
        non_digit_kinds=np.array(["letter", "symbol", "doodle"] * 50)[: len(non_digits)],
        refused_by_preprocessing=150 - len(non_digits),
    )


@pytest.fixture(scope="module")
def saved(small_data, tmp_path_factory):
    detector = DigitDetector(epochs=2, seed=0).fit(small_data.digits, small_data.non_digits)
    folder = tmp_path_factory.mktemp("detector")
    record = write_detector(detector, validation_figures(detector, small_data), folder)
    return detector, record, folder


def test_threshold_refuses_at_most_the_budget_of_every_source():
    scores = {"a": np.linspace(0, 10, 1001), "b": np.linspace(-5, 5, 1001)}
    threshold = threshold_for(scores, budget=0.01)
    assert all((values < threshold).mean() <= 0.01 for values in scores.values())
    assert threshold == pytest.approx(np.quantile(scores["b"], 0.01))


def test_a_detector_needs_both_kinds():
    with pytest.raises(ValueError, match="both digits and non-digits"):
        DigitDetector(epochs=1).fit(np.zeros((4, 28, 28), np.uint8), np.zeros((0, 28, 28), np.uint8))


def test_the_saved_detector_scores_as_it_did_and_its_record_describes_it(saved, small_data):
    detector, record, folder = saved
    loaded = load_detector(folder)
    np.testing.assert_allclose(loaded.detector.score(small_data.digits), detector.score(small_data.digits), atol=1e-5)
    assert loaded.record == record == read_detector_record(folder)
    assert loaded.detector.get_params() == detector.get_params()
    assert set(record.digits_refused) == {"mnist", "other"}
    assert set(record.non_digits_refused) == {"letter", "symbol", "doodle"}
    assert 0.5 <= record.auroc <= 1.0
    assert sum(record.histogram.digits) == len(small_data.digits)
    assert sum(record.histogram.non_digits) == len(small_data.non_digits)


def test_verdicts_follow_the_threshold(saved, small_data):
    _, _, folder = saved
    screen = load_detector(folder)
    scores = screen.detector.score(small_data.digits[:20])
    verdicts = screen.verdicts(small_data.digits[:20])
    assert [verdict.is_digit for verdict in verdicts] == list(scores >= screen.record.threshold)
    single = screen.verdict(small_data.digits[0])
    assert single.is_digit == verdicts[0].is_digit and single.score == pytest.approx(verdicts[0].score, abs=1e-4)


def test_a_modified_detector_is_not_loaded(saved, tmp_path):
    _, record, folder = saved
    for name in (record.artifact, RECORD_NAME):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    with open(tmp_path / record.artifact, "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelUnavailableError, match="does not match its record"):
        load_detector(tmp_path)


def test_a_missing_or_damaged_record_is_a_sentence(tmp_path):
    with pytest.raises(ModelUnavailableError, match="No not-a-digit detector"):
        read_detector_record(tmp_path)
    (tmp_path / RECORD_NAME).write_text("{not json")
    with pytest.raises(ModelUnavailableError, match="not a readable not-a-digit detector record"):
        read_detector_record(tmp_path)


def test_record_round_trips_through_json():
    histogram = ScoreHistogram.of(np.array([-30.0, 0.5, 3.0]), np.array([-2.0, 50.0]))
    assert len(histogram.digits) == len(HISTOGRAM_EDGES) - 1
    # Scores beyond the edges land in the end bins rather than being lost.
    assert histogram.digits[0] == 1 and histogram.non_digits[-1] == 1
    record = DetectorRecord(
        "detector.keras", "0" * 64, -1.5, {"epochs": 1}, {"mnist": 0.002}, {"letter": 0.9}, 0.99, histogram, {}
    )
    assert DetectorRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


@pytest.mark.parametrize(
    ("field", "value"),
    [("histogram", []), ("threshold", "low"), ("threshold", None), ("digits_refused", {}), ("sha256", None)],
)
def test_a_record_with_a_damaged_field_is_refused_with_a_sentence(saved, tmp_path, field, value):
    _, record, _ = saved
    (tmp_path / RECORD_NAME).write_text(json.dumps({**record.to_json(), field: value}))
    with pytest.raises(ModelUnavailableError, match=f"not a readable not-a-digit detector record.*{field}"):
        read_detector_record(tmp_path)


def test_verdict_json_says_not_a_digit():
    assert Verdict(False, -4.25, -1.0).to_json() == {"not_a_digit": True, "digit_score": -4.25, "threshold": -1.0}
