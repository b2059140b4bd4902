"""The Draw page's whole-number mode, run headless with Streamlit's AppTest.

AppTest cannot draw on the canvas component, so these tests put a stand-in
``streamlit_drawable_canvas`` module in its place that hands the page a
prepared RGBA drawing, as the real canvas does when the pen is lifted. The
digits are held-out MNIST *training* digits, never test images.
"""

import io
import sys
import types

import numpy as np
from PIL import Image

from digitlab.checks.realworld import held_out_indices
from digitlab.imaging.decode import resize
from digitlab.imaging.normalise import crop_to_ink
from tests.app.apptest import (
    assert_no_exception,
    page,
    texts,
)

NUMBER_MODE = "A whole number"


class StandInCanvas:
    """Replaces the canvas component: returns ``image_data`` and remembers the size the page asked for."""

    def __init__(self, image_data: np.ndarray | None):
        self.image_data = image_data
        self.sizes: list[tuple[int, int]] = []

    def __call__(self, **options):
        self.sizes.append((options["width"], options["height"]))
        return types.SimpleNamespace(image_data=self.image_data, json_data=None)


def use_canvas(monkeypatch, image_data: np.ndarray | None) -> StandInCanvas:
    canvas = StandInCanvas(image_data)
    module = types.ModuleType("streamlit_drawable_canvas")
    module.st_canvas = canvas
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", module)
    return canvas


def written_number(mnist_train, positions: list[int], size: tuple[int, int] = (720, 240)) -> tuple[np.ndarray, str]:
    """White held-out training digits side by side on an opaque black RGBA canvas, and the number they show."""
    images, labels = mnist_train
    chosen = held_out_indices(len(images))[positions]
    canvas = np.zeros((size[1], size[0]), dtype=np.float32)
    # Digits fill five eighths of the strip's height, with gaps in proportion, whatever the strip's size.
    scale = size[1] / 240
    height, top, left, gap = round(150 * scale), round(45 * scale), round(60 * scale), round(40 * scale)
    for index in chosen:
        crop = crop_to_ink(images[index] / 255.0)
        digit = np.clip(resize(crop, (round(crop.shape[1] * height / crop.shape[0]), height)), 0.0, 1.0)
        canvas[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
        left += digit.shape[1] + gap
    rgba = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    rgba[..., :3] = (canvas * 255).astype(np.uint8)[..., None]
    rgba[..., 3] = 255
    return rgba, "".join(str(int(labels[index])) for index in chosen)


def number_page(mode: str = NUMBER_MODE):
    app = page("draw").run()
    app.radio(key="draw_mode").set_value(mode).run()
    return app


def digit_metrics(app) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric if metric.label.startswith("Digit ")}


def png_bytes(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(255 - rgba[..., 0]).save(buffer, format="PNG")
    return buffer.getvalue()


def test_number_mode_reads_a_drawn_number_digit_by_digit(monkeypatch, manifest, mnist_train):
    drawing, number = written_number(mnist_train, [0, 1, 2])
    canvas = use_canvas(monkeypatch, drawing)

    app = number_page()

    assert_no_exception(app)
    assert canvas.sizes[0] == (280, 280) and canvas.sizes[-1][0] > 2 * canvas.sizes[-1][1]
    digits = digit_metrics(app)
    assert list(digits) == ["Digit 1", "Digit 2", "Digit 3"]
    assert "".join(digits.values()) == number
    verdict = texts(app.success) + texts(app.warning)
    assert f"reads **{number}**" in verdict
    annotated = [image for image in app.image if "digits found" in " ".join(image.captions)]
    assert len(annotated) == 1
    assert "confidence" in " ".join(element.value for element in app.markdown)


def test_the_narrow_strip_fits_a_phone_and_still_reads_the_number(monkeypatch, manifest, mnist_train):
    drawing, number = written_number(mnist_train, [7, 8, 9], size=(360, 120))
    canvas = use_canvas(monkeypatch, drawing)
    app = number_page()

    app.radio(key="number_strip").set_value("Narrow, for phones").run()

    assert_no_exception(app)
    assert canvas.sizes[-1] == (360, 120)
    assert "".join(digit_metrics(app).values()) == number


def test_number_mode_hints_on_an_empty_canvas(monkeypatch, manifest):
    blank = np.zeros((240, 720, 4), dtype=np.uint8)
    blank[..., 3] = 255
    use_canvas(monkeypatch, blank)

    app = number_page()

    assert_no_exception(app)
    assert "The canvas is empty" in texts(app.info)
    assert not app.metric and not app.error


def test_number_mode_reads_an_uploaded_number_and_explains_bad_uploads(monkeypatch, manifest, mnist_train):
    use_canvas(monkeypatch, None)
    drawing, number = written_number(mnist_train, [3, 4, 5, 6])
    app = number_page()
    upload = next(tab for tab in app.tabs if "Upload" in tab.label)

    upload.file_uploader[0].set_value(("cheque.png", png_bytes(drawing), "image/png")).run()

    assert_no_exception(app)
    assert "".join(digit_metrics(app).values()) == number

    blank = np.zeros((240, 720, 4), dtype=np.uint8)
    app.file_uploader[0].set_value(("blank.png", png_bytes(blank), "image/png")).run()
    assert_no_exception(app)
    assert "No digit found" in texts(app.info) and not app.metric

    app.file_uploader[0].set_value(("notes.png", b"these are not pixels", "image/png")).run()
    assert_no_exception(app)
    assert "cannot be used" in texts(app.error) and not app.metric


class UnsureReader:
    """A stand-in model that reads every digit as a 4 with 40 % confidence."""

    def predict_proba(self, images):
        probabilities = np.full((len(np.asarray(images).reshape(-1, 28, 28)), 10), 0.6 / 9)
        probabilities[:, 4] = 0.4
        return probabilities


def test_number_mode_flags_digits_read_with_low_confidence(monkeypatch, manifest, mnist_train):
    drawing, _ = written_number(mnist_train, [0, 1])
    use_canvas(monkeypatch, drawing)
    name = next(iter(manifest.models))
    monkeypatch.setattr("ui.resources.load_models", lambda: ({name: UnsureReader()}, {}, False))

    app = number_page()

    assert_no_exception(app)
    assert "".join(digit_metrics(app).values()) == "44"
    assert "unsure of digits 1, 2" in texts(app.warning)
    assert sum("low confidence" in element.value for element in app.markdown) == 2


def test_one_digit_mode_keeps_the_square_canvas(monkeypatch, manifest):
    canvas = use_canvas(monkeypatch, None)

    app = number_page("One digit")

    assert_no_exception(app)
    assert set(canvas.sizes) == {(280, 280)}
    assert "Draw a digit on the black square" in texts(app.info)
