"""Declarative Keras networks for the neural model families.

Every network takes raw MNIST pixels (float32 0-255, shape 28x28x1) and
rescales them itself, so a saved ``.keras`` file is a complete model that
needs no preprocessing code beside it. Augmentation layers are active only
while training.
"""

import keras
from keras import layers

from digitlab.data.mnist import CLASSES, IMAGE_SHAPE

INPUT_SHAPE = (*IMAGE_SHAPE, 1)
# Keras' default of 0.99 needs hundreds of steps before the running statistics are usable,
# which short training runs (small subsets, few epochs) never reach.
NORMALISATION_MOMENTUM = 0.9


def augmentation_layers(seed: int) -> list[layers.Layer]:
    """Small random rotations, zooms and shifts, as handwriting varies."""
    return [
        layers.RandomRotation(0.03, fill_mode="constant", seed=seed, name="random_rotation"),
        layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 1, name="random_zoom"),
        layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 2, name="random_shift"),
    ]


def convolution_block(filters: int, name: str) -> list[layers.Layer]:
    """Two 3x3 convolutions with batch normalisation, then 2x2 max-pooling."""
    block = []
    for index in (1, 2):
        block += [
            layers.Conv2D(filters, 3, use_bias=False, name=f"{name}_conv{index}"),
            layers.BatchNormalization(momentum=NORMALISATION_MOMENTUM, name=f"{name}_norm{index}"),
            layers.ReLU(name=f"{name}_relu{index}"),
        ]
    return block + [layers.MaxPooling2D(name=f"{name}_pool")]


def build_cnn(*, augment: bool = True, dropout: float = 0.3, dense_units: int = 128, seed: int = 0):
    """The shipped convolutional network: two convolution blocks and a small dense head.

    A deeper network trained the same way (327,000 weights against 198,000, twice the training time) read no more
    of ``realworld``'s digits (README, "Writing styles"), so the shipped one keeps this size.
    """
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="pixels"),
            layers.Rescaling(1 / 255, name="rescale"),
            *(augmentation_layers(seed) if augment else []),
            *convolution_block(32, "block1"),
            *convolution_block(64, "block2"),
            layers.Flatten(name="flatten"),
            layers.Dense(dense_units, use_bias=False, name="dense"),
            layers.BatchNormalization(momentum=NORMALISATION_MOMENTUM, name="dense_norm"),
            layers.ReLU(name="dense_relu"),
            layers.Dropout(dropout, seed=seed, name="dropout"),
            layers.Dense(CLASSES, activation="softmax", name="probabilities"),
        ],
        name="cnn",
    )


def build_mlp(
    *, augment: bool = True, hidden_units: int = 1024, hidden_layers: int = 2, dropout: float = 0.3, seed: int = 0
):
    """The shipped multilayer perceptron: fully connected layers over the flattened pixels."""
    hidden = []
    for index in range(1, hidden_layers + 1):
        hidden += [
            layers.Dense(hidden_units, use_bias=False, name=f"hidden{index}"),
            layers.BatchNormalization(momentum=NORMALISATION_MOMENTUM, name=f"hidden{index}_norm"),
            layers.ReLU(name=f"hidden{index}_relu"),
            layers.Dropout(dropout, seed=seed + index, name=f"hidden{index}_dropout"),
        ]
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="pixels"),
            layers.Rescaling(1 / 255, name="rescale"),
            *(augmentation_layers(seed) if augment else []),
            layers.Flatten(name="flatten"),
            *hidden,
            layers.Dense(CLASSES, activation="softmax", name="probabilities"),
        ],
        name="mlp",
    )


def build_quick_cnn(*, augment: bool = False, seed: int = 0):
    """The quick recipe's convolutional network: three 3x3 convolutions, each followed by 2x2 max-pooling.

    Sized for a 2-core CPU rather than for the last tenth of a percent: about 29,000 weights and 1.9 million
    multiply-adds per image (Keras' simple convnet 2.4 million, the shipped CNN about 10 million). The first
    convolution has no batch normalisation (normalising 28x28 maps costs more time than it saves); the later
    ones have it, so that a high learning rate is stable from the first steps.
    """
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="pixels"),
            layers.Rescaling(1 / 255, name="rescale"),
            *(augmentation_layers(seed) if augment else []),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="block1_conv"),
            layers.MaxPooling2D(name="block1_pool"),
            *quick_block(32, "block2"),
            *quick_block(64, "block3"),
            layers.Flatten(name="flatten"),
            layers.Dense(CLASSES, activation="softmax", name="probabilities"),
        ],
        name="quick_cnn",
    )


def quick_block(filters: int, name: str) -> list[layers.Layer]:
    """One 3x3 convolution with batch normalisation, then 2x2 max-pooling."""
    return [
        layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv"),
        layers.BatchNormalization(momentum=NORMALISATION_MOMENTUM, name=f"{name}_norm"),
        layers.ReLU(name=f"{name}_relu"),
        layers.MaxPooling2D(name=f"{name}_pool"),
    ]


def build_quick_mlp(*, augment: bool = False, seed: int = 0):
    """The quick recipe's multilayer perceptron: the shipped one's two wide layers, without dropout.

    A run of two or three epochs is too short to overfit, so dropout would only slow learning down.
    """
    return build_mlp(augment=augment, dropout=0.0, seed=seed)


def build_reference_mlp():
    """Keras' MNIST multilayer perceptron example (two 512-unit layers, dropout 0.2): the quick MLP's baseline."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="pixels"),
            layers.Rescaling(1 / 255, name="rescale"),
            layers.Flatten(name="flatten"),
            layers.Dense(512, activation="relu", name="hidden1"),
            layers.Dropout(0.2, name="dropout1"),
            layers.Dense(512, activation="relu", name="hidden2"),
            layers.Dropout(0.2, name="dropout2"),
            layers.Dense(CLASSES, activation="softmax", name="probabilities"),
        ],
        name="reference_mlp",
    )


def build_reference_cnn():
    """Keras' "simple MNIST convnet" example, the model most MNIST demo apps ship, as the benchmark's baseline."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="pixels"),
            layers.Rescaling(1 / 255, name="rescale"),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(64, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dropout(0.5, name="dropout"),
            layers.Dense(CLASSES, activation="softmax", name="probabilities"),
        ],
        name="reference_convnet",
    )
