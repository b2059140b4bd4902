"""A 2-D map of many images from their embedding, so similar images lie close together on screen."""

import numpy as np

METHODS = {
    "tsne": "t-SNE of the first 50 principal components",
    "pca": "the first two principal components",
}
# t-SNE works on a PCA reduction: it removes noise and makes the neighbour search much faster.
TSNE_PCA_COMPONENTS = 50


def two_d_map(embedding: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """Coordinates of shape ``(N, 2)``, float32, scaled into [-1, 1] on the wider axis."""
    from sklearn.decomposition import PCA

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}.")
    embedding = np.asarray(embedding, dtype=np.float32)
    if embedding.ndim != 2 or len(embedding) < 3:
        raise ValueError(f"Expected at least 3 rows of features, got shape {embedding.shape}.")
    if method == "pca":
        coordinates = PCA(n_components=2, random_state=seed).fit_transform(embedding)
    else:
        from sklearn.manifold import TSNE

        components = min(TSNE_PCA_COMPONENTS, *embedding.shape)
        reduced = PCA(n_components=components, random_state=seed).fit_transform(embedding)
        perplexity = min(30.0, (len(embedding) - 1) / 3)
        coordinates = TSNE(perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    coordinates = coordinates - coordinates.mean(axis=0)
    return (coordinates / max(np.abs(coordinates).max(), 1e-12)).astype(np.float32)
