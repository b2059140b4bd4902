"""Inside each model, for one drawing: what every layer of the networks makes of it, and the SVM's analogue.

:func:`layer_views` returns plain arrays for the dashboard to draw:

- the CNN's feature maps after each convolution block (strongest channels
  first), its dense layer's activations and its output;
- the MLP's first hidden layer: every unit's activation, and the units that
  push hardest towards the chosen digit, each with its input weights as a
  28x28 picture of what it looks for;
- the SVM's support vectors that weigh most in the one-vs-one duel between the
  chosen digit and its closest rival (kernel value times dual coefficient),
  as images with their labels.

:func:`channel_drivers` answers "which input pixels drive this channel?" for
one CNN channel: the gradient of the channel's mean activation with respect
to the pixels.
"""

import itertools
from dataclasses import dataclass, field

import numpy as np

from digitlab.data.mnist import IMAGE_SHAPE
from digitlab.models.base import DigitClassifier
from digitlab.models.neural import CNNClassifier, MLPClassifier, network_input
from digitlab.models.svm import SVMClassifier

# How many channels of each convolution block, hidden units and support vectors a view keeps.
SHOWN_CHANNELS = 16
SHOWN_UNITS = 12
SHOWN_SUPPORT_VECTORS = 12
MLP_HIDDEN_OUTPUT = "hidden1_relu"
MLP_HIDDEN_DENSE = "hidden1"
MLP_HIDDEN_NORM = "hidden1_norm"


@dataclass(frozen=True)
class FeatureMaps:
    """One convolution block's output for the drawing: its strongest channels' maps, strongest first."""

    layer: str
    number: int  # the block's place in the network, from 1
    channels: np.ndarray  # (k,) channel numbers in the layer
    strength: np.ndarray  # (k,) each channel's mean activation
    maps: np.ndarray  # (k, height, width) activations
    total_channels: int


@dataclass(frozen=True)
class CNNView:
    blocks: list[FeatureMaps]
    # (units,) the hidden dense layer's activations after its ReLU; None for a network without one (the quick CNN).
    dense: np.ndarray | None
    probabilities: np.ndarray  # (10,)


@dataclass(frozen=True)
class HiddenUnit:
    """One hidden unit of the MLP: how strongly it fired, how much it pushed the chosen digit, what it looks for."""

    index: int
    activation: float
    # Activation times the gradient of the chosen digit's score (before the softmax) with respect to it: its share
    # of the push towards that digit.
    contribution: float
    weights: np.ndarray  # (28, 28) its effective input weights (after batch normalisation's scale)


@dataclass(frozen=True)
class MLPView:
    activations: np.ndarray  # (units,) the first hidden layer after its ReLU
    chosen: int
    units: list[HiddenUnit]  # the strongest contributors to the chosen digit, largest push first
    probabilities: np.ndarray


@dataclass(frozen=True)
class SupportVectorView:
    """The support vectors that weigh most in the chosen digit's duel with its closest rival."""

    chosen: int
    rival: int
    # (k, 28, 28) each support vector as the deskewed image its PCA features stand for, in [0, 1].
    images: np.ndarray
    labels: np.ndarray  # (k,) the digit each support vector is an example of
    # (k,) kernel value times dual coefficient, signed so that a positive weight pushes towards ``chosen``.
    weights: np.ndarray
    # The duel's decision value: positive for ``chosen``; the weights above are its largest parts.
    decision: float


@dataclass(frozen=True)
class LayerViews:
    cnn: CNNView | None = None
    mlp: MLPView | None = None
    svm: SupportVectorView | None = None
    # The given models that have no view, by name, each with the reason as a sentence.
    unavailable: dict[str, str] = field(default_factory=dict)


def layer_views(models: dict[str, DigitClassifier], image: np.ndarray) -> LayerViews:
    """Each view that applies to the given models, for one 28x28 MNIST-format image, and why the others have none."""
    image = single_image(image)
    views = {}
    unavailable = {}
    for name, model in models.items():
        if isinstance(model, CNNClassifier) and "cnn" not in views:
            try:
                views["cnn"] = cnn_view(model, image)
            except ValueError as error:
                unavailable[name] = str(error)
        elif isinstance(model, MLPClassifier) and "mlp" not in views:
            views["mlp"] = mlp_view(model, image)
        elif isinstance(model, SVMClassifier) and "svm" not in views:
            views["svm"] = support_vector_view(model, image)
        else:
            unavailable[name] = no_view_reason(model)
    return LayerViews(**views, unavailable=unavailable)


def no_view_reason(model: DigitClassifier) -> str:
    """Why a model has no inside view, as a sentence for the page."""
    if model.members:
        *others, last = [member.upper() for member in model.members]
        members = f"{', '.join(others)} and {last}" if others else last
        return f"{model.title} has no layers of its own: it combines the answers of the {members}; look inside them."
    return f"digitlab has no view of the inside of the {model.title} family yet."


def single_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.shape == (1, *IMAGE_SHAPE):
        image = image[0]
    if image.shape != IMAGE_SHAPE:
        raise ValueError(f"Expected one 28x28 image, got shape {image.shape}.")
    return image


def layer_outputs(network, image: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named layers' outputs for one image, running the network's layers in order as at inference."""
    hidden = network_input(image[None])
    outputs = {}
    for layer in network.layers:
        hidden = layer(hidden, training=False)
        if layer.name in names:
            outputs[layer.name] = np.asarray(hidden)[0]
    return outputs


def cnn_view(model: CNNClassifier, image: np.ndarray) -> CNNView:
    network = model.network_
    blocks = block_outputs(network)
    if not blocks:
        raise ValueError("The CNN has no convolution block that ends in pooling, which its view is made of.")
    dense = hidden_dense_output(network)
    names = (*blocks, *([dense] if dense else []), network.layers[-1].name)
    outputs = layer_outputs(network, image, names)
    return CNNView(
        blocks=[strongest_channels(name, outputs[name], number) for number, name in enumerate(blocks, start=1)],
        dense=outputs[dense].astype(np.float32) if dense else None,
        probabilities=outputs[network.layers[-1].name].astype(np.float64),
    )


def block_outputs(network) -> list[str]:
    """The layers that end each convolution block, by the network's structure: those that feed a pooling layer.

    Found rather than named, so that every CNN the lab trains (the shipped recipe's two double-convolution
    blocks, the quick recipe's three single ones) has its view.
    """
    import keras

    return [
        before.name
        for before, layer in itertools.pairwise(network.layers)
        if isinstance(layer, keras.layers.MaxPooling2D)
    ]


def hidden_dense_output(network) -> str | None:
    """The last ReLU between flattening and the output layer, if any: the hidden dense layer's activations."""
    import keras

    flattened = next(
        (index for index, layer in enumerate(network.layers) if isinstance(layer, keras.layers.Flatten)), 0
    )
    hidden = [
        layer.name
        for layer in network.layers[flattened + 1 : -1]
        if isinstance(layer, keras.layers.ReLU) or getattr(layer, "activation", None) is keras.activations.relu
    ]
    return hidden[-1] if hidden else None


def strongest_channels(
    layer: str, activations: np.ndarray, number: int = 1, count: int = SHOWN_CHANNELS
) -> FeatureMaps:
    """A ``(height, width, channels)`` output's ``count`` channels of highest mean activation, strongest first."""
    strength = activations.mean(axis=(0, 1))
    # A stable sort keeps channels of equal strength (all zero, say) in their own order.
    order = np.argsort(-strength, kind="stable")[:count]
    return FeatureMaps(
        layer=layer,
        number=number,
        channels=order,
        strength=strength[order].astype(np.float32),
        maps=np.moveaxis(activations[..., order], -1, 0).astype(np.float32),
        total_channels=int(activations.shape[-1]),
    )


def channel_drivers(model: CNNClassifier, image: np.ndarray, layer: str, channel: int) -> np.ndarray:
    """The gradient of one channel's mean activation with respect to each input pixel, as a ``(28, 28)`` map.

    Positive pixels raise the channel when they brighten: what the channel responds to in this drawing.
    """
    import tensorflow as tf

    image = single_image(image)
    network = model.network_
    names = [each.name for each in network.layers]
    if layer not in names:
        raise ValueError(f"The network has no layer {layer!r}; it has {', '.join(names)}.")
    pixels = tf.constant(network_input(image[None]))
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        hidden = pixels
        for each in network.layers[: names.index(layer) + 1]:
            hidden = each(hidden, training=False)
        if not 0 <= channel < hidden.shape[-1]:
            raise ValueError(f"{layer} has {hidden.shape[-1]} channels; there is no channel {channel}.")
        strength = tf.reduce_mean(hidden[..., channel])
    return np.asarray(tape.gradient(strength, pixels))[0, ..., 0].astype(np.float32)


def mlp_view(model: MLPClassifier, image: np.ndarray, count: int = SHOWN_UNITS) -> MLPView:
    """The first hidden layer's activations and its units that push hardest towards the chosen digit."""
    import tensorflow as tf

    network = model.network_
    names = [layer.name for layer in network.layers]
    split = names.index(MLP_HIDDEN_OUTPUT) + 1
    hidden = tf.constant(network_input(image[None]))
    for layer in network.layers[:split]:
        hidden = layer(hidden, training=False)
    last = network.layers[-1]
    with tf.GradientTape() as tape:
        tape.watch(hidden)
        output = hidden
        for layer in network.layers[split:-1]:
            output = layer(output, training=False)
        probabilities = last(output, training=False)[0]
        chosen = int(tf.argmax(probabilities))
        # The score before the softmax: a confident answer's probability barely moves, its score does.
        score = tf.matmul(output, last.kernel[:, chosen : chosen + 1])[0, 0]
    activations = np.asarray(hidden)[0]
    contributions = activations * np.asarray(tape.gradient(score, hidden))[0]
    order = np.argsort(-contributions, kind="stable")[:count]
    weights = effective_input_weights(network)
    return MLPView(
        activations=activations.astype(np.float32),
        chosen=chosen,
        units=[
            HiddenUnit(
                index=int(unit),
                activation=float(activations[unit]),
                contribution=float(contributions[unit]),
                weights=weights[:, unit].reshape(IMAGE_SHAPE).astype(np.float32),
            )
            for unit in order
        ],
        probabilities=np.asarray(probabilities, dtype=np.float64),
    )


def effective_input_weights(network) -> np.ndarray:
    """The first hidden layer's ``(784, units)`` weights scaled as its batch normalisation scales each unit.

    A unit whose normalisation multiplies by a negative factor responds to the opposite of its raw weights, so
    the picture of what it looks for must carry that sign.
    """
    kernel = np.asarray(network.get_layer(MLP_HIDDEN_DENSE).kernel)
    norm = network.get_layer(MLP_HIDDEN_NORM)
    scale = np.asarray(norm.gamma) / np.sqrt(np.asarray(norm.moving_variance) + norm.epsilon)
    return kernel * scale[None, :]


def support_vector_view(model: SVMClassifier, image: np.ndarray, count: int = SHOWN_SUPPORT_VECTORS):
    """The support vectors with the largest kernel value times dual coefficient in the chosen digit's duel.

    The duel is the one-vs-one classifier between the digit the SVM chooses and the rival it beats by the
    smallest margin; its decision value is the sum over its support vectors of those products plus a bias.
    """
    pipeline = model.pipeline
    svc = pipeline.named_steps["svc"]
    flat = image.reshape(1, -1).astype(np.float64)
    features = pipeline[:-1].transform(flat)[0]
    pairwise = svc.decision_function(features[None])[0]
    chosen = int(model.predict(image[None])[0])
    rival, decision = closest_rival(pairwise, chosen, len(svc.classes_))
    indices, coefficients = duel_coefficients(svc, chosen, rival)
    distances = ((svc.support_vectors_[indices] - features) ** 2).sum(axis=1)
    weights = coefficients * np.exp(-svc._gamma * distances)
    order = np.argsort(-np.abs(weights), kind="stable")[:count]
    starts = np.concatenate([[0], np.cumsum(svc.n_support_)])
    labels = np.searchsorted(starts, indices[order], side="right") - 1
    return SupportVectorView(
        chosen=chosen,
        rival=rival,
        images=support_vector_images(pipeline, indices[order]),
        labels=svc.classes_[labels].astype(np.int64),
        weights=weights[order].astype(np.float64),
        decision=decision,
    )


def closest_rival(pairwise: np.ndarray, chosen: int, classes: int) -> tuple[int, float]:
    """The class whose one-vs-one duel with ``chosen`` is closest, and that duel's value signed for ``chosen``.

    scikit-learn orders the ``classes * (classes - 1) / 2`` duels (0, 1), (0, 2), ... (1, 2), ...; a positive value
    favours the first class of the pair.
    """
    duels = {}
    position = 0
    for first in range(classes):
        for second in range(first + 1, classes):
            if chosen in (first, second):
                other = second if chosen == first else first
                duels[other] = pairwise[position] if chosen == first else -pairwise[position]
            position += 1
    rival = min(duels, key=duels.get)
    return int(rival), float(duels[rival])


def duel_coefficients(svc, chosen: int, rival: int) -> tuple[np.ndarray, np.ndarray]:
    """The support vectors of the (chosen, rival) duel and their dual coefficients, signed for ``chosen``.

    libsvm stores, for the pair of classes (i, j) with i < j, the coefficients of class i's support vectors in
    row j - 1 of ``dual_coef_`` and those of class j's in row i.
    """
    first, second = sorted((chosen, rival))
    starts = np.concatenate([[0], np.cumsum(svc.n_support_)])
    first_vectors = np.arange(starts[first], starts[first + 1])
    second_vectors = np.arange(starts[second], starts[second + 1])
    coefficients = np.concatenate([svc.dual_coef_[second - 1, first_vectors], svc.dual_coef_[first, second_vectors]])
    sign = 1.0 if chosen == first else -1.0
    return np.concatenate([first_vectors, second_vectors]), sign * coefficients


def support_vector_images(pipeline, indices: np.ndarray) -> np.ndarray:
    """Support vectors as ``(k, 28, 28)`` images: their PCA features mapped back to (deskewed) pixels in [0, 1]."""
    vectors = pipeline.named_steps["svc"].support_vectors_[indices] * pipeline.named_steps["scale"].scale_
    pixels = pipeline.named_steps["pca"].inverse_transform(vectors)
    return np.clip(pixels, 0.0, 1.0).reshape(-1, *IMAGE_SHAPE).astype(np.float32)
