import numpy as np
from scipy import ndimage

from digitlab.models.features import Deskew, GlobalScaler, deskew, warp_affine


def test_identity_warp_returns_the_images(small_test):
    images = small_test[0][:20]
    identity = np.tile(np.eye(2, dtype=np.float32), (20, 1, 1))
    centres = np.full((20, 2), 13.5, dtype=np.float32)
    np.testing.assert_allclose(warp_affine(images, identity, centres), images, atol=1e-4)


def test_warp_agrees_with_scipy_affine_transform(small_test):
    image = small_test[0][:1].astype(np.float32)
    matrix = np.array([[[0.9, -0.2], [0.3, 1.1]]], dtype=np.float32)
    source = np.array([[12.0, 15.0]], dtype=np.float32)
    centre = np.array([13.5, 13.5])
    expected = ndimage.affine_transform(image[0], matrix[0], offset=source[0] - matrix[0] @ centre, order=1)
    np.testing.assert_allclose(warp_affine(image, matrix, source)[0][1:-1, 1:-1], expected[1:-1, 1:-1], atol=1e-3)


def test_deskew_straightens_a_slanted_bar():
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    for row in range(6, 22):
        column = 8 + (row - 6) // 2  # leans right going down
        image[0, row, column : column + 3] = 255
    straight = deskew(image)[0]
    columns = [np.average(np.arange(28), weights=straight[row]) for row in range(8, 20) if straight[row].sum() > 0]
    assert np.ptp(columns) < 1.5  # the slanted bar spanned eight columns
    assert abs(ndimage.center_of_mass(straight)[1] - 13.5) < 0.5


def test_feature_steps_follow_the_transformer_contract():
    images = np.random.default_rng(0).integers(0, 255, (10, 784)).astype(np.uint8)
    deskewed = Deskew().fit(images).transform(images)
    assert deskewed.shape == (10, 784)
    scaler = GlobalScaler().fit(deskewed)
    assert abs(scaler.transform(deskewed).std() - 1.0) < 1e-6
