"""The shipped not-a-digit detector: intact, refusing drawings that are not digits and keeping real ones."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from digitlab import settings
from digitlab.models.detector import RECORD_NAME, load_detector
from tests.support import NOT_DIGITS, not_a_digit_png

SHIPPED = settings.DEFAULT_MODELS_DIR


@pytest.fixture(scope="module")
def screen():
    return load_detector(SHIPPED)


def test_the_detector_is_shipped_with_its_record():
    assert (SHIPPED / RECORD_NAME).exists()


def test_mnist_test_digits_are_hardly_ever_refused(screen, mnist_test):
    images, _ = mnist_test
    refused = np.mean([not verdict.is_digit for verdict in screen.verdicts(images[:2000])])
    # The threshold refuses at most 0.75 % of each kind of validation digit; the test set is a fresh draw.
    assert refused <= 0.01


@pytest.mark.parametrize("kind", list(NOT_DIGITS))
def test_drawings_that_are_not_digits_are_refused(screen, kind):
    from digitlab.imaging.preprocess import preprocess

    assert not screen.verdict(preprocess(not_a_digit_png(kind))).is_digit


def run_predict(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "digitlab", "predict", *arguments, "--models-dir", str(SHIPPED)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_predict_answers_not_a_digit_as_a_reading(tmp_path, mnist_test):
    from PIL import Image

    house = tmp_path / "house.png"
    house.write_bytes(not_a_digit_png("house"))
    digit = tmp_path / "digit.png"
    images, labels = mnist_test
    Image.fromarray(images[0]).save(digit)

    result = run_predict(str(house), str(digit), "--model", "cnn", "--json")
    assert result.returncode == 0, result.stderr
    house_reading, digit_reading = (json.loads(line) for line in result.stdout.splitlines())
    assert house_reading["digit"] is None and house_reading["not_a_digit"] is True
    assert house_reading["closest"] in range(10)
    assert house_reading["digit_score"] < house_reading["threshold"]
    assert digit_reading["digit"] == labels[0] and digit_reading["not_a_digit"] is False

    plain = run_predict(str(house), "--model", "cnn")
    assert plain.returncode == 0
    assert plain.stdout.strip() == f"{house}: cnn: not a digit (closest: {house_reading['closest']})"


def number_with_a_sign(images: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Two MNIST digits, a sign, two more, enlarged three times, dark on light as on paper."""
    pieces = [images[0], images[1], sign, images[2], images[3]]
    line = np.concatenate([np.pad(piece, ((14, 14), (10, 10))) for piece in pieces], axis=1)
    return 255 - np.kron(line, np.ones((3, 3), dtype=np.uint8))


def written_sign(kind: str) -> np.ndarray:
    """A 28x28 white-on-black plus sign as tall as a digit, or a dash at mid-height."""
    sign = np.zeros((28, 28), dtype=np.uint8)
    sign[13:16, 5:23] = 255
    if kind == "plus":
        sign[5:23, 13:16] = 255
    return sign


@pytest.mark.parametrize("kind", ["plus", "dash"])
def test_predict_multi_leaves_a_sign_out_of_the_number(tmp_path, mnist_test, kind):
    from PIL import Image

    images, labels = mnist_test
    path = tmp_path / "number.png"
    Image.fromarray(number_with_a_sign(images, written_sign(kind))).save(path)
    result = run_predict(str(path), "--multi", "--model", "cnn", "--json")
    assert result.returncode == 0, result.stderr
    reading = json.loads(result.stdout)
    assert reading["number"] == "".join(str(label) for label in labels[:4])
    # The sign is marked as not a digit (segmentation may also drop a dash as too low to be one).
    skipped = [piece for piece in reading["digits"] if piece["not_a_digit"]]
    assert len(skipped) == 1 or (kind == "dash" and not skipped and len(reading["digits"]) == 4)
    assert all(piece["digit"] is None and piece["closest"] in range(10) for piece in skipped)


def test_predict_multi_finds_no_number_in_a_row_of_doodles(tmp_path):
    from PIL import Image

    doodles = [Image.open(io.BytesIO(not_a_digit_png(kind))) for kind in ("house", "star", "H")]
    row = Image.new("L", (600, 200), 255)
    for position, doodle in enumerate(doodles):
        row.paste(doodle, (position * 200, 0))
    path = tmp_path / "doodles.png"
    row.save(path)
    result = run_predict(str(path), "--multi", "--model", "cnn")
    assert result.returncode == 0, result.stderr
    assert "finds no number" in result.stdout
