"""Adversarial attacks bounded in L-infinity: projected gradient descent, and the smallest change that flips an answer.

Pixels are on MNIST's 0-255 scale; ``eps`` is a share of it (0.1 lets every
pixel move by up to 25.5). :func:`pgd` is generic over a function that gives
the loss's gradient for a batch, so the Keras networks (:func:`keras_gradient`)
and a hand-made linear model in the tests use the same code.
"""

from collections.abc import Callable

import numpy as np

from digitlab.data.mnist import IMAGE_SHAPE
from digitlab.models.neural import KerasClassifier

GradientFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]
PredictFunction = Callable[[np.ndarray], np.ndarray]
STEPS = 20
# How closely the Draw page's smallest flips pin eps down: about one grey level (1.3 of 255).
FLIP_TOLERANCE = 0.005
# The step is this multiple of eps / steps: large enough to reach the ball's corners from anywhere inside it.
STEP_SCALE = 2.5
# The values of eps the smallest-flip search tries at once in each round.
SEARCH_POINTS = 16


def pgd(
    gradient: GradientFunction,
    images: np.ndarray,
    labels: np.ndarray,
    eps: float | np.ndarray,
    *,
    steps: int = STEPS,
    seed: int = 0,
    random_start: bool = True,
) -> np.ndarray:
    """Images within ``eps`` (L-infinity, as a share of 255) of ``images`` that raise the loss ``gradient`` climbs.

    Each step moves every pixel by the sign of its gradient and projects back into the ball and onto 0-255
    (Madry et al., 2018). ``random_start`` begins at a random point of the ball, fixed by ``seed``. ``eps`` is one
    value for every image or one per image.
    """
    eps = np.asarray(eps, dtype=np.float32)
    if np.any(eps < 0):
        raise ValueError(f"eps must be 0 or more, not {eps.min():g}.")
    original = np.asarray(images, dtype=np.float32)
    radius = (eps * 255.0).reshape(-1, *([1] * (original.ndim - 1))) if eps.ndim else eps * 255.0
    step = STEP_SCALE * radius / max(steps, 1)
    adversarial = original.copy()
    if random_start and np.any(radius > 0):
        adversarial += np.random.default_rng(seed).uniform(-radius, radius, original.shape).astype(np.float32)
        adversarial = np.clip(adversarial, 0.0, 255.0)
    for _ in range(steps):
        adversarial = adversarial + step * np.sign(gradient(adversarial, labels))
        adversarial = np.clip(np.clip(adversarial, original - radius, original + radius), 0.0, 255.0)
    return adversarial


def keras_gradient(network) -> GradientFunction:
    """The gradient of the cross-entropy on the scores before the softmax, for a Keras network ending in one.

    Scores rather than probabilities: a confident softmax saturates and its gradient vanishes.
    """
    import tensorflow as tf

    last = network.layers[-1]

    # Traced once for any batch size: an attack calls it hundreds of times, which layer-by-layer eager calls make
    # several times slower.
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, *IMAGE_SHAPE, 1], tf.float32),
            tf.TensorSpec([None], tf.int64),
        ],
    )
    def traced(pixels, labels):
        with tf.GradientTape() as tape:
            tape.watch(pixels)
            hidden = pixels
            for layer in network.layers[:-1]:
                hidden = layer(hidden, training=False)
            scores = tf.matmul(tf.reshape(hidden, (tf.shape(pixels)[0], -1)), last.kernel) + last.bias
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=scores))
        return tape.gradient(loss, pixels)

    def gradient(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        pixels = tf.constant(np.asarray(images, dtype=np.float32)[..., None])
        return traced(pixels, tf.constant(np.asarray(labels, dtype=np.int64))).numpy()[..., 0]

    return gradient


def smallest_flip(
    gradient: GradientFunction,
    predict: PredictFunction,
    image: np.ndarray,
    *,
    largest: float = 0.5,
    tolerance: float = 0.002,
    steps: int = STEPS,
) -> tuple[float, np.ndarray] | None:
    """The smallest ``eps`` at which :func:`pgd` changes ``predict``'s answer for one image, and the changed image.

    A search over ``eps`` between 0 and ``largest``, to within ``tolerance``; None if even ``largest`` does not flip
    the answer. Each round attacks the image at ``SEARCH_POINTS`` values of eps at once (one batch: on a CPU about
    the cost of one image) and narrows the range to the step below the smallest that flips: two rounds pin eps
    to 0.002 where a bisection takes eight attacks one after the other. The attack starts at the image itself, so
    the answer is the same on every call.
    """
    image = np.asarray(image, dtype=np.float32)[None]
    answer = predict(image)[0]
    labels = np.full(SEARCH_POINTS, answer)
    low, high = 0.0, largest
    found = None
    while found is None or high - low > tolerance:
        grid = np.linspace(low, high, SEARCH_POINTS + 1, dtype=np.float32)[1:]
        candidates = pgd(
            gradient, np.repeat(image, SEARCH_POINTS, axis=0), labels, grid, steps=steps, random_start=False
        )
        flipped = np.flatnonzero(predict(candidates) != answer)
        if not len(flipped):
            # In the first round nothing flips up to ``largest``. A later round's last point is the ``high`` that
            # flipped in the round before; should it not flip again (the batch's arithmetic can differ by a hair),
            # the earlier finding stands.
            return None if found is None else (high, found)
        first = int(flipped[0])
        low, high, found = (float(grid[first - 1]) if first else low), float(grid[first]), candidates[first]
    return high, found


def smallest_flips(
    models: dict, image: np.ndarray, *, source: str = "cnn"
) -> dict[str, tuple[float, np.ndarray] | None]:
    """For each model, :func:`smallest_flip` of its answer on one 28x28 image.

    The Keras networks are attacked through their own gradient; the others (the SVM, the ensemble) through the
    ``source`` network's, with their own answers judging the flip (a transfer attack, so an upper bound).
    """
    gradients = {
        name: keras_gradient(model.network_) for name, model in models.items() if isinstance(model, KerasClassifier)
    }
    fallback = gradients.get(source, next(iter(gradients.values()), None))
    flips = {}
    for name, model in models.items():
        gradient = gradients.get(name, fallback)
        flips[name] = (
            None if gradient is None else smallest_flip(gradient, model.predict, image, tolerance=FLIP_TOLERANCE)
        )
    return flips
