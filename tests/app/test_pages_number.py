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
from digitlab.recognise import recognise_files
from tests.app.apptest import (
    assert_no_exception,
    button_labelled,
    dashboard,
    digit_image_png,
    page,
    texts,
)

NUMBER_MODE = "A whole number"
NARROW, WIDE = "Narrow, for phones", "Wide"
# The page's column on a phone 360 px wide held upright, inside Streamlit's 16 px margins.
SMALL_PHONE_COLUMN = 328


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
    if len(manifest.models) > 1:
        (others,) = [element.value for element in app.markdown if "the other models read" in element.value]
        assert others.count("\n- ") == len(manifest.models) - 1


def test_number_mode_starts_with_a_strip_that_fits_a_phone_and_reads_the_number_on_it(
    monkeypatch, manifest, mnist_train
):
    drawing, number = written_number(mnist_train, [7, 8, 9], size=(320, 120))
    canvas = use_canvas(monkeypatch, drawing)

    app = number_page()

    assert_no_exception(app)
    assert app.radio(key="number_strip").value == NARROW
    width, height = canvas.sizes[-1]
    assert width <= SMALL_PHONE_COLUMN and width > 2 * height, f"a {width}x{height} strip does not fit a phone"
    assert "".join(digit_metrics(app).values()) == number


def test_the_wide_strip_once_chosen_is_kept_after_another_page(monkeypatch, manifest):
    canvas = use_canvas(monkeypatch, None)
    app = dashboard().run()
    app.radio(key="draw_mode").set_value(NUMBER_MODE).run()

    app.radio(key="number_strip").set_value(WIDE).run()
    app.switch_page("pages/my_digits.py").run()
    app.switch_page("pages/draw.py").run()

    assert_no_exception(app)
    assert app.radio(key="number_strip").value == WIDE
    assert canvas.sizes[-1] == (720, 240)


def test_number_mode_hints_on_an_empty_canvas(monkeypatch, manifest):
    blank = np.zeros((240, 720, 4), dtype=np.uint8)
    blank[..., 3] = 255
    use_canvas(monkeypatch, blank)

    app = number_page()

    assert_no_exception(app)
    assert [title.value for title in app.title] == ["Read a whole number"]
    assert "reads each digit of your number" in app.caption[0].value
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
    # Confidence to a tenth of a percent, as the one-digit cards give it.
    assert sum("**40.0%** · low confidence" in element.value for element in app.markdown) == 2


def test_one_digit_mode_keeps_the_square_canvas(monkeypatch, manifest):
    canvas = use_canvas(monkeypatch, None)

    app = number_page("One digit")

    assert_no_exception(app)
    assert set(canvas.sizes) == {(280, 280)}
    assert [title.value for title in app.title] == ["Draw a digit"]
    assert "Draw a digit on the black square" in texts(app.info)


def command_line_reason(tmp_path, name: str, payload: bytes) -> str:
    """The sentence ``python -m digitlab predict FILE`` prints for the file, without its path."""
    path = tmp_path / name
    path.write_bytes(payload)
    (outcome,) = recognise_files([path], ["cnn"])
    assert outcome.error is not None, f"the command line reads {name}"
    return outcome.error.removeprefix(f"{path}: ")


def noise_png() -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (120, 120), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    return buffer.getvalue()


def test_one_digit_mode_gives_the_command_lines_reason_for_an_upload_with_no_digit(monkeypatch, tmp_path, manifest):
    use_canvas(monkeypatch, None)
    app = number_page("One digit")

    reasons = {}
    for name, payload in (("noise.png", noise_png()), ("blank.png", digit_image_png("blank"))):
        app.file_uploader[0].set_value((name, payload, "image/png")).run()

        assert_no_exception(app)
        reasons[name] = command_line_reason(tmp_path, name, payload)
        assert reasons[name] in texts(app.info)
        assert "it looks blank" not in texts(app.info)
        assert not app.metric
    assert "random noise" in reasons["noise.png"] and "blank" in reasons["blank.png"]


def test_one_digit_mode_says_an_upload_holds_several_digits_and_reads_it_as_a_number(
    monkeypatch, tmp_path, manifest, mnist_train
):
    use_canvas(monkeypatch, None)
    drawing, number = written_number(mnist_train, [0, 1, 2, 3], size=(1000, 240))
    payload = png_bytes(drawing)
    app = number_page("One digit")

    app.file_uploader[0].set_value(("number.png", payload, "image/png")).run()

    assert_no_exception(app)
    reason = command_line_reason(tmp_path, "number.png", payload)
    assert "scattered in many small marks" in reason
    assert reason in texts(app.info)
    assert f"This looks like {len(number)} digits side by side" in texts(app.warning)

    button_labelled(app, "Read it as a whole number").click().run()

    assert_no_exception(app)
    assert app.radio(key="draw_mode").value == NUMBER_MODE
    assert "".join(digit_metrics(app).values()) == number


def test_one_digit_mode_reads_a_single_digit_without_offering_a_number(monkeypatch, manifest):
    use_canvas(monkeypatch, None)
    app = number_page("One digit")

    app.file_uploader[0].set_value(("7.png", digit_image_png("7"), "image/png")).run()

    assert_no_exception(app)
    assert app.metric and "digits side by side" not in texts(app.warning)
    assert not [button for button in app.button if button.label == "Read it as a whole number"]


def test_one_digit_mode_offers_a_number_for_a_drawing_and_an_upload_at_once(monkeypatch, manifest, mnist_train):
    drawn, _ = written_number(mnist_train, [0, 1], size=(480, 240))
    use_canvas(monkeypatch, drawn)
    uploaded, _ = written_number(mnist_train, [0, 1, 2, 3], size=(1000, 240))
    app = number_page("One digit")

    app.file_uploader[0].set_value(("number.png", png_bytes(uploaded), "image/png")).run()

    assert_no_exception(app)
    offers = texts(app.warning)
    assert "This looks like 2 digits side by side" in offers and "This looks like 4 digits side by side" in offers
    assert [button.label for button in app.button].count("Read it as a whole number") == 2


def test_the_readings_stand_above_the_image_and_never_cover_a_digits_strokes():
    from digitlab.imaging.segment import NumberDigit
    from ui.number_view import NOT_A_DIGIT_COLOUR, SURE_COLOUR, TRANSPARENT, UNSURE_COLOUR, annotated_image

    # Solid white boxes: a label written anywhere inside a box would land on its strokes.
    drawing = np.zeros((240, 600), dtype=np.uint8)
    boxes = [(40, 20, 120, 200), (240, 20, 120, 200), (440, 20, 120, 200)]
    for left, top, width, height in boxes:
        drawing[top : top + height, left : left + width] = 255
    digits = [
        NumberDigit(7, 0.99, boxes[0]),
        NumberDigit(4, 0.40, boxes[1]),
        NumberDigit(2, 0.90, boxes[2], not_a_digit=True),
    ]
    picture = np.asarray(annotated_image(drawing, digits))
    band = picture.shape[0] - drawing.shape[0]
    assert band > 0 and picture.shape[2] == 4
    # Below the band the image is unchanged and opaque, but for the boxes' outlines.
    assert (picture[band:][30:210, 50:150] == 255).all()
    assert (picture[band:, :, 3] == 255).all()
    inked = picture[:band, :, 3] > 0
    for (left, top, width, _), colour in zip(boxes, (SURE_COLOUR, UNSURE_COLOUR, NOT_A_DIGIT_COLOUR), strict=True):
        assert tuple(picture[band + top, left + width // 2, :3]) == colour
        over_box = inked[:, left : left + width]
        assert over_box.any(), f"no reading over the box at {left}"
        assert (picture[:band, left : left + width][over_box][:, :3] == colour).all()
        columns = np.flatnonzero(over_box.any(axis=0))
        assert abs(left + (columns[0] + columns[-1]) / 2 - (left + width / 2)) <= width / 8, "not centred"
    # Between the readings the band is see-through, so it takes the page's colour in a light or a dark theme.
    assert (picture[:band, 170:230] == TRANSPARENT).all()


def test_a_reading_at_the_edge_of_the_image_is_not_cut_off():
    from digitlab.imaging.segment import NumberDigit
    from ui.number_view import annotated_image

    drawing = np.zeros((240, 600), dtype=np.uint8)
    picture = np.asarray(annotated_image(drawing, [NumberDigit(8, 0.99, (0, 20, 6, 200))]))
    band = picture.shape[0] - drawing.shape[0]
    inked_columns = np.flatnonzero((picture[:band, :, 3] > 0).any(axis=0))
    # Centred over the 6-pixel box, half the label would lie left of the image; it starts inside it instead.
    assert inked_columns.size and inked_columns[0] >= 1
