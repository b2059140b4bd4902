import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from digitlab import preprocess as pp
from digitlab.errors import ImageError, NoDigitFoundError
from tests.conftest import digit_like_stroke


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    return ndimage.center_of_mass(image.astype(np.float64))


def ink_box(image: np.ndarray, threshold: int = 30) -> tuple[int, int]:
    rows = np.flatnonzero((image > threshold).any(axis=1))
    columns = np.flatnonzero((image > threshold).any(axis=0))
    return rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **{"format": "PNG", **options})
    return buffer.getvalue()


def square_ring(size: int, top: int, left: int, side: int, width: int) -> np.ndarray:
    """A white square outline on black: a digit-like shape of known geometry."""
    image = np.zeros((size, size), dtype=np.float32)
    image[top : top + side, left : left + side] = 1.0
    image[top + width : top + side - width, left + width : left + side - width] = 0.0
    return image


def test_off_centre_digit_comes_out_centred_in_a_20_pixel_box():
    image = square_ring(200, top=10, left=120, side=60, width=8)
    result = pp.preprocess(image)
    assert result.shape == (28, 28) and result.dtype == np.uint8
    row, column = centre_of_mass(result)
    assert abs(row - 14) < 0.6 and abs(column - 14) < 0.6
    assert max(ink_box(result)) in (20, 21)


def test_aspect_ratio_is_kept():
    image = np.zeros((300, 300), dtype=np.float32)
    image[50:250, 140:160] = 1.0  # a 200 x 20 bar
    height, width = ink_box(pp.preprocess(image))
    assert height in (20, 21) and width <= 4


def test_dark_on_light_is_inverted_to_white_on_black():
    light = 1.0 - square_ring(100, 20, 20, 50, 6)
    result = pp.preprocess(light)
    assert result[0, 0] == 0 and result.max() == 255


def test_to_white_on_black_keeps_dark_background_images():
    image = square_ring(50, 10, 10, 20, 4)
    np.testing.assert_array_equal(pp.to_white_on_black(image), image)
    np.testing.assert_array_equal(pp.to_white_on_black(1 - image), image)


def test_thick_stroke_on_large_canvas_matches_mnist_intensity_range():
    result = pp.preprocess(digit_like_stroke(400))
    assert result.max() == 255
    assert (result > 0).mean() < 0.5


def test_rgba_canvas_with_transparent_background_reads_as_white_on_black():
    rgba = np.zeros((120, 120, 4), dtype=np.uint8)
    rgba[20:100, 55:65] = (255, 255, 255, 255)
    result = pp.preprocess(rgba)
    column = centre_of_mass(result)[1]
    assert abs(column - 14) < 0.6 and result[:, 13:15].max() == 255


def test_rgba_png_with_dark_ink_on_transparency():
    rgba = np.zeros((80, 80, 4), dtype=np.uint8)
    rgba[10:70, 35:45] = (0, 0, 0, 255)
    result = pp.preprocess(png_bytes(Image.fromarray(rgba, "RGBA")))
    assert result.max() == 255 and result[0, 0] == 0


def test_palette_and_rgb_images_are_accepted():
    gray = (square_ring(64, 8, 8, 40, 6) * 255).astype(np.uint8)
    palette = Image.fromarray(gray).convert("P")
    rgb = Image.fromarray(np.stack([gray] * 3, axis=-1), "RGB")
    np.testing.assert_array_equal(pp.preprocess(palette), pp.preprocess(rgb))


def test_exif_orientation_is_applied():
    gray = np.zeros((40, 80), dtype=np.uint8)
    gray[18:22, 10:70] = 255  # a horizontal bar
    image = Image.fromarray(gray)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    height, width = ink_box(pp.preprocess(buffer.getvalue()))
    assert height > width  # the bar is vertical once EXIF is applied


@pytest.mark.parametrize("fill", [0, 255, 128])
def test_single_colour_image_has_no_digit(fill):
    with pytest.raises(NoDigitFoundError, match="No digit"):
        pp.preprocess(np.full((50, 50), fill, dtype=np.uint8))


def test_a_speck_is_not_a_digit():
    image = np.zeros((280, 280), dtype=np.float32)
    image[100, 100] = 1.0
    with pytest.raises(NoDigitFoundError):
        pp.preprocess(image)


def test_mnist_digits_pass_through_almost_unchanged(mnist_test):
    images = mnist_test[0][:50]
    redone = np.stack([pp.preprocess(image) for image in images]).astype(np.float32)
    correlation = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(images, redone, strict=True)]
    assert np.median(correlation) > 0.95


@pytest.mark.parametrize(
    ("payload", "message"),
    [(b"", "empty"), (b"this is text, not a picture", "not a readable image")],
)
def test_unreadable_bytes_are_image_errors(payload, message):
    with pytest.raises(ImageError, match=message):
        pp.preprocess(payload)


def test_truncated_png_is_an_image_error():
    whole = png_bytes(Image.fromarray((square_ring(64, 8, 8, 40, 6) * 255).astype(np.uint8)))
    with pytest.raises(ImageError):
        pp.preprocess(whole[: len(whole) // 2])


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        pp.preprocess(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="is a directory"):
        pp.preprocess(tmp_path)


def test_huge_image_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (30_000, 30_000)).save(path)
    with pytest.raises(ImageError, match="pixel limit"):
        pp.preprocess(path)


def test_wrong_array_shapes_are_image_errors():
    with pytest.raises(ImageError):
        pp.preprocess(np.zeros((4, 4, 4, 4)))
    with pytest.raises(ImageError):
        pp.preprocess(np.full((10, 10), np.nan))
