import numpy as np
import pytest

from digitlab.insight.neighbours import nearest_by_class, penultimate_embedding


def test_nearest_by_class_finds_each_classes_closest_points_nearest_first():
    # Reference points on a line at 0, 1, ..., 29 with label = position // 3; queries at 4.2 and 25.9.
    reference = np.arange(30, dtype=np.float32)[:, None]
    labels = np.arange(30) // 3
    queries = np.array([[4.2], [25.9]], dtype=np.float32)

    nearest = nearest_by_class(queries, reference, labels, per_class=2)

    assert nearest.shape == (2, 10, 2)
    assert nearest[0, 1].tolist() == [4, 5]  # label 1 holds 3, 4, 5
    assert nearest[0, 0].tolist() == [2, 1]
    assert nearest[0, 9].tolist() == [27, 28]
    assert nearest[1, 8].tolist() == [26, 25]
    assert all(set(labels[nearest[row, digit]]) == {digit} for row in range(2) for digit in range(10))


def test_nearest_by_class_agrees_with_brute_force_across_chunks(monkeypatch):
    monkeypatch.setattr("digitlab.insight.neighbours.QUERY_CHUNK", 7)
    rng = np.random.default_rng(0)
    reference, labels = rng.normal(size=(200, 5)), np.repeat(np.arange(10), 20)
    queries = rng.normal(size=(30, 5))

    nearest = nearest_by_class(queries, reference, labels, per_class=3)

    for row, query in enumerate(queries):
        for digit in range(10):
            members = np.flatnonzero(labels == digit)
            distances = ((reference[members] - query) ** 2).sum(axis=1)
            assert nearest[row, digit].tolist() == members[np.argsort(distances)[:3]].tolist()


def test_nearest_by_class_refuses_mismatched_input():
    with pytest.raises(ValueError, match="equal widths"):
        nearest_by_class(np.zeros((2, 3)), np.zeros((20, 4)), np.arange(20) % 10)
    with pytest.raises(ValueError, match="only 1"):
        nearest_by_class(np.zeros((2, 3)), np.zeros((10, 3)), np.arange(10), per_class=2)


def test_penultimate_embedding_is_the_input_of_the_last_layer():
    import keras

    network = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(4, name="features"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    features = network.layers[2]

    embedding = penultimate_embedding(network, images)

    expected = (images.reshape(5, -1) / 255) @ features.kernel.numpy() + features.bias.numpy()
    assert embedding.shape == (5, 4) and embedding.dtype == np.float32
    assert embedding == pytest.approx(expected, abs=1e-4), "dropout must be off"
