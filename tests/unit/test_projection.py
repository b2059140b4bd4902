import numpy as np
import pytest

from digitlab.insight.projection import two_d_map


def two_clusters(count: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    group = np.repeat([0, 1], count // 2)
    points = rng.normal(size=(count, 20)) + group[:, None] * 12
    return points, group


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_separate_clusters_stay_apart_on_the_map(method):
    points, group = two_clusters()

    coordinates = two_d_map(points, method=method)

    assert coordinates.shape == (len(points), 2) and coordinates.dtype == np.float32
    assert np.abs(coordinates).max() == pytest.approx(1.0)
    centres = [coordinates[group == side].mean(axis=0) for side in (0, 1)]
    spread = max(np.linalg.norm(coordinates[group == side] - centres[side], axis=1).mean() for side in (0, 1))
    assert np.linalg.norm(centres[0] - centres[1]) > 3 * spread


def test_the_map_is_the_same_for_the_same_seed_and_refuses_bad_input():
    points, _ = two_clusters()

    assert np.array_equal(two_d_map(points, "tsne", seed=1), two_d_map(points, "tsne", seed=1))
    with pytest.raises(ValueError, match="method"):
        two_d_map(points, "umap")
    with pytest.raises(ValueError, match="at least 3"):
        two_d_map(points[:2])
