"""Which pixels drove a model's answer: heat maps over the 28x28 input.

Two methods. Occlusion sensitivity works for every model, the SVM included:
blank one small square at a time and measure how much the log-probability of
the digit falls (the log, because a confident model's probability barely moves
from 1.0 and the map would show almost nothing). Saliency is for the Keras models: the gradient of the digit's
score (before the softmax, which would flatten it for confident answers) with
respect to every pixel. Both return a ``(28, 28)`` float32 map; larger means
the pixel mattered more for that digit.
"""

from collections.abc import Callable

import numpy as np

from digitlab.data.mnist import CLASSES, IMAGE_SHAPE
from digitlab.models.base import Predictor

METHODS = {
    "occlusion": "Occlusion: how much the digit's log-probability falls when a 4x4 square is blanked",
    "saliency": "Saliency: how strongly each pixel's brightness moves the digit's score (gradient)",
}
OCCLUSION_PATCH = 4
OCCLUSION_STRIDE = 2


def _single_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    if image.shape != IMAGE_SHAPE:
        raise ValueError(f"Expected one 28x28 image, got shape {image.shape}.")
    return image


def _check_digit(digit: int) -> int:
    if not 0 <= int(digit) < CLASSES:
        raise ValueError(f"digit must be between 0 and 9, not {digit}.")
    return int(digit)


def occlusion_map(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    digit: int,
    patch: int = OCCLUSION_PATCH,
    stride: int = OCCLUSION_STRIDE,
    fill: float = 0.0,
) -> np.ndarray:
    """The mean fall in ``digit``'s log-probability over the occluding squares that cover each pixel.

    Every square position is predicted in one batch, so a whole map costs one
    call of ``predict_proba`` on ``((28 - patch) // stride + 1) ** 2`` images (169 by default).
    A square placed on blank background changes nothing, so the map lights up ink, not missing ink.
    """
    image, digit = _single_image(image), _check_digit(digit)
    if not 1 <= patch <= IMAGE_SHAPE[0] or stride < 1:
        raise ValueError(f"patch must be 1-28 and stride at least 1, got {patch} and {stride}.")
    positions = [(top, left) for top in range(0, 29 - patch, stride) for left in range(0, 29 - patch, stride)]
    batch = np.repeat(image[None], len(positions) + 1, axis=0)
    for number, (top, left) in enumerate(positions, start=1):
        batch[number, top : top + patch, left : left + patch] = fill
    scores = np.log(np.clip(np.asarray(predict_proba(batch), dtype=np.float64)[:, digit], 1e-12, None))
    falls = scores[0] - scores[1:]
    total = np.zeros(IMAGE_SHAPE, dtype=np.float64)
    covered = np.zeros(IMAGE_SHAPE, dtype=np.float64)
    for fall, (top, left) in zip(falls, positions, strict=True):
        total[top : top + patch, left : left + patch] += fall
        covered[top : top + patch, left : left + patch] += 1
    return (total / np.maximum(covered, 1)).astype(np.float32)


def saliency_map(network, image: np.ndarray, digit: int) -> np.ndarray:
    """The absolute gradient of ``digit``'s pre-softmax score with respect to each input pixel.

    ``network`` is a Keras ``Sequential`` whose last layer is a dense layer with a softmax,
    like ``KerasClassifier.network_``; its score is that layer's input times its weights.
    """
    import tensorflow as tf

    image, digit = _single_image(image), _check_digit(digit)
    last = network.layers[-1]
    if not hasattr(last, "kernel"):
        raise ValueError("The network's last layer must be a dense layer to take the score before its softmax.")
    pixels = tf.constant(image[None, ..., None])
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        hidden = pixels
        for layer in network.layers[:-1]:
            hidden = layer(hidden, training=False)
        score = tf.matmul(tf.reshape(hidden, (1, -1)), last.kernel[:, digit : digit + 1])
    gradient = tape.gradient(score, pixels)
    return np.abs(gradient.numpy()[0, ..., 0]).astype(np.float32)


def explain(model: Predictor, image: np.ndarray, digit: int) -> dict[str, np.ndarray]:
    """Every heat map that applies to ``model``: occlusion always, saliency for a Keras model."""
    maps = {"occlusion": occlusion_map(model.predict_proba, image, digit)}
    if hasattr(model, "network_"):
        maps["saliency"] = saliency_map(model.network_, image, digit)
    return maps


def heat_overlay(image: np.ndarray, heat: np.ndarray, scale: int = 6) -> np.ndarray:
    """An RGB ``uint8`` picture of the digit in grey with the positive part of ``heat`` laid over it in red-yellow.

    The heat is scaled to its own maximum, so each map shows where, not how much; a map with no positive
    value shows the digit alone.
    """
    image, heat = _single_image(image), np.asarray(heat, dtype=np.float32)
    if heat.shape != IMAGE_SHAPE:
        raise ValueError(f"Expected a 28x28 heat map, got shape {heat.shape}.")
    if scale < 1:
        raise ValueError(f"scale must be at least 1, not {scale}.")
    positive = np.clip(heat, 0, None)
    strength = positive / positive.max() if positive.max() > 0 else positive
    grey = np.repeat((np.clip(image, 0, 255) / 255 * 0.6)[..., None], 3, axis=2)
    # A "hot" colour ramp: dark red for weak evidence, through red and orange, to yellow for the strongest.
    colour = np.stack([np.clip(0.4 + 1.2 * strength, 0, 1), np.clip(2 * strength - 0.6, 0, 1), 0 * strength], axis=2)
    alpha = (0.85 * np.sqrt(strength))[..., None]
    blended = grey * (1 - alpha) + colour * alpha
    pixels = (blended * 255).round().astype(np.uint8)
    return np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
