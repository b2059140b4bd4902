"""Property-based tests: whatever bytes or arrays come in, the predict path returns a reading or one of our errors."""

import io
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from digitlab.errors import DigitlabError
from digitlab.imaging.preprocess import preprocess
from digitlab.imaging.segment import read_number
from digitlab.models.svm import SVMClassifier
from digitlab.recognise import predict_digit

# Overflow or invalid arithmetic anywhere on the path fails the test instead of passing silently.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Drawings reach segmentation and the model, so fewer of them fit in the time.
DRAWING_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def models(small_train):
    with warnings.catch_warnings():
        # 60 calibration images leave some digit with fewer examples than calibration folds.
        warnings.filterwarnings("ignore", message="The least populated class")
        return {"svm": SVMClassifier(validation_size=100).fit(*small_train)}


def run_predict_path(source, models) -> None:
    """Preprocess and read one source as a digit and as a number; only a reading or a DigitlabError may result."""
    try:
        model_input = preprocess(source)
    except DigitlabError:
        pass
    else:
        assert model_input.shape == (28, 28) and model_input.dtype == np.uint8
        (prediction,) = predict_digit(models, model_input)
        assert 0 <= prediction.digit <= 9 and isinstance(prediction.low_confidence, bool)
    try:
        _, (reading,) = read_number(source, models)
    except DigitlabError:
        return
    assert reading.number.isdigit() and len(reading.number) == len(reading.digits)


@st.composite
def damaged_images(draw) -> bytes:
    """A small random picture saved in a random format, then truncated, overwritten in places or left whole."""
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "1", "P"]))
    seed = draw(st.integers(0, 2**32 - 1))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGBA").convert(mode)
    image_format = draw(st.sampled_from(FORMATS))
    if image_format == "JPEG" and mode not in ("L", "RGB"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    payload = bytearray(buffer.getvalue())
    damage = draw(st.sampled_from(["none", "truncate", "overwrite"]))
    if damage == "truncate":
        payload = payload[: draw(st.integers(0, len(payload)))]
    elif damage == "overwrite":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(payload) - 1))
            payload[position] = draw(st.integers(0, 255))
    return bytes(payload)


@SETTINGS
@given(payload=st.binary(max_size=4096))
def test_random_bytes_give_a_reading_or_our_error(models, payload):
    run_predict_path(payload, models)


@SETTINGS
@given(payload=damaged_images())
def test_damaged_image_files_give_a_reading_or_our_error(models, payload):
    run_predict_path(payload, models)


@st.composite
def drawings(draw) -> np.ndarray:
    """Random strokes on a random background, at a random size, polarity, contrast and noise level."""
    height, width = draw(st.integers(4, 200)), draw(st.integers(4, 200))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    background, ink = draw(st.floats(0, 1)), draw(st.floats(0, 1))
    image = np.full((height, width), background, dtype=np.float64)
    for _ in range(draw(st.integers(0, 6))):
        top, left = rng.integers(0, height), rng.integers(0, width)
        image[top : top + rng.integers(1, height + 1), left : left + rng.integers(1, max(2, width // 3))] = ink
    image += rng.normal(0, draw(st.floats(0, 0.3)), image.shape)
    image += np.linspace(0, draw(st.floats(-0.5, 0.5)), width)[None, :]
    return np.clip(image, 0, 1)


@DRAWING_SETTINGS
@given(image=drawings())
def test_random_drawings_give_a_reading_or_our_error(models, image):
    run_predict_path(image, models)
    run_predict_path((image * 255).astype(np.uint8), models)


ARRAY_DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64, np.bool_])
ARRAY_SHAPES = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=48),
    st.tuples(st.integers(1, 48), st.integers(1, 48), st.sampled_from([1, 2, 3, 4])),
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
)


@SETTINGS
@given(array=hnp.arrays(dtype=ARRAY_DTYPES, shape=ARRAY_SHAPES))
def test_random_arrays_give_a_reading_or_our_error(models, array):
    run_predict_path(array, models)


@SETTINGS
@given(
    array=hnp.arrays(
        dtype=np.float64,
        shape=st.tuples(st.integers(8, 64), st.integers(8, 64)),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    )
)
def test_arrays_with_extreme_values_give_a_reading_or_our_error(models, array):
    run_predict_path(array, models)
