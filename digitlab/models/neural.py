"""The Keras families, a multilayer perceptron and a convolutional network, with their shared training."""

import math
from abc import abstractmethod
from collections.abc import Callable

import numpy as np

from digitlab.data.mnist import IMAGE_SHAPE
from digitlab.models.base import DigitClassifier, ProgressCallback, as_image_batch, normalised_rows, validation_split

# Above this many images, Keras predictions are made in batches of this size.
PREDICTION_BATCH = 2048


class KerasClassifier(DigitClassifier):
    """Shared training and inference for the Keras families.

    Training holds out part of the training set for validation, follows a
    cosine learning-rate schedule with a one-epoch warm-up, and stops early
    (keeping the best weights) when validation accuracy stops improving.
    """

    trains_in_epochs = True

    def __init__(
        self,
        *,
        epochs: int = 30,
        batch_size: int = 128,
        learning_rate: float = 2e-3,
        validation_size: int = 5000,
        patience: int = 8,
        augment: bool = True,
        style_share: float = 0.0,
        seed: int = 0,
        initialisation_seed: int | None = None,
    ):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_size = validation_size
        self.patience = patience
        self.augment = augment
        # Extra examples in other writing styles (digitlab.styles) per training image, which training makes
        # from the training part and hands to ``fit`` as ``extra_examples``. The shipped networks use none: with a
        # fifth, the CNN read more of realworld's renderings (97.5 % instead of 96.7 %) but less of MNIST's test
        # set (99.53 % instead of 99.65 %), which the shipped models must not lose.
        self.style_share = style_share
        self.seed = seed
        # The held-out split always follows ``seed``, so networks that differ only in how they were
        # initialised, shuffled and augmented are validated on the same images and can be weighed together.
        self.initialisation_seed = initialisation_seed

    @property
    def initialisation_seed_(self) -> int:
        """The seed for starting weights, shuffles and augmentation: ``initialisation_seed``, else ``seed``."""
        return self.seed if self.initialisation_seed is None else self.initialisation_seed

    @abstractmethod
    def build_network(self):
        """A fresh, uncompiled Keras model."""

    def extra_examples_wanted(self, count: int) -> int:
        return round(self.style_share * len(self.training_part(count)))

    def training_part(self, count: int) -> np.ndarray:
        return validation_split(count, self.validation_size, self.seed)[0]

    def fit(self, images, labels, *, progress=None, verbose: int | str = 0, extra_examples=None):
        """Fit on the training part of ``images``; ``extra_examples`` (images, labels) join that part only."""
        import keras

        images = as_image_batch(images)
        labels = np.asarray(labels)
        keras.utils.set_random_seed(self.initialisation_seed_)
        train_part, validation_part = validation_split(len(images), self.validation_size, self.seed)
        train_images, train_labels = images[train_part], labels[train_part]
        if extra_examples is not None:
            train_images = np.concatenate([train_images, as_image_batch(extra_examples[0]).astype(images.dtype)])
            train_labels = np.concatenate([train_labels, np.asarray(extra_examples[1], dtype=labels.dtype)])
        self.extra_examples_ = 0 if extra_examples is None else len(extra_examples[1])
        network = self.build_network()
        steps_per_epoch = math.ceil(len(train_labels) / self.batch_size)
        warmup_steps = steps_per_epoch
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=self.learning_rate / 10,
            decay_steps=max(1, steps_per_epoch * self.epochs - warmup_steps),
            warmup_target=self.learning_rate,
            warmup_steps=warmup_steps,
        )
        network.compile(
            optimizer=keras.optimizers.Adam(learning_rate=schedule),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        callbacks = [
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", mode="max", patience=self.patience, restore_best_weights=True
            )
        ]
        if progress:
            callbacks.append(epoch_progress_callback(progress, self.epochs))
        history = network.fit(
            network_input(train_images),
            train_labels,
            validation_data=(network_input(images[validation_part]), labels[validation_part]),
            epochs=self.epochs,
            batch_size=self.batch_size,
            callbacks=callbacks,
            verbose=verbose,
        )
        self._set_network(network)
        self.history_ = {key: [float(value) for value in values] for key, values in history.history.items()}
        return self

    def _set_network(self, network) -> None:
        self.network_ = network
        self._forward = traced_forward(network)

    def predict_proba(self, images):
        return normalised_rows(batched_run(self._forward, network_input(images)))

    def complexity(self):
        return {"parameters": int(self.network_.count_params())}

    def training_notes(self):
        notes = {
            "augmentation": "random rotation (up to 11 degrees), zoom (10 %) and shift (8 %)"
            if self.augment
            else "none",
            "validation": f"{self.validation_size} held-out training images, early stopping on validation accuracy",
            "learning_rate_schedule": "one-epoch warm-up, then cosine decay",
        }
        if getattr(self, "extra_examples_", 0):
            notes["writing_styles"] = (
                f"{self.extra_examples_} extra examples made from the training part: digits rendered as scans, forms, "
                "drawings and photos and preprocessed, digits drawn from the training fonts, elastically "
                "distorted digits with thinner and thicker pens"
            )
        if hasattr(self, "history_"):
            notes["epochs_run"] = len(self.history_.get("loss", []))
        return notes

    def save(self, path):
        save_weights_only(self.network_, path)

    @classmethod
    def load(cls, path, *, params=None, members=None):
        import keras

        model = cls.from_params(params)
        model._set_network(keras.saving.load_model(path, compile=False, safe_mode=True))
        return model


def network_input(images: np.ndarray) -> np.ndarray:
    """MNIST-format images as the networks (and their exports) take them: float32 with a channel axis."""
    return as_image_batch(images).astype(np.float32)[..., None]


def batched_probabilities(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> np.ndarray:
    """``run`` over ``batch`` in parts of ``PREDICTION_BATCH`` images, as float64 rows that sum to 1."""
    return normalised_rows(batched_run(run, batch))


def batched_run(run: Callable, batch: np.ndarray) -> np.ndarray:
    """``run`` (a NumPy function or a traced TensorFlow one) over ``batch`` in parts of ``PREDICTION_BATCH``."""
    parts = [
        np.asarray(run(batch[start : start + PREDICTION_BATCH])) for start in range(0, len(batch), PREDICTION_BATCH)
    ]
    return np.concatenate(parts)


def traced_forward(network) -> Callable:
    """The network's inference pass as a traced function for float32 batches with a channel axis.

    A traced function avoids Model.predict's per-call overhead, which dominates single images.
    """
    import tensorflow as tf

    return tf.function(
        lambda batch: network(batch, training=False),
        input_signature=[tf.TensorSpec([None, *IMAGE_SHAPE, 1], tf.float32)],
        reduce_retracing=True,
    )


def save_weights_only(network, path) -> None:
    """Save ``network`` without its optimiser's state.

    A copy rebuilt from the configuration is uncompiled, so the optimiser's state (twice the weights' size, of
    no use for inference) stays out of the file; keras.models.clone_model would keep it.
    """
    weights_only = type(network).from_config(network.get_config())
    weights_only.set_weights(network.get_weights())
    weights_only.save(path)


def epoch_progress_callback(progress: ProgressCallback, epochs: int):
    """A Keras callback that reports each finished epoch to ``progress(done, total, details)``."""
    import keras

    class EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            progress(epoch + 1, epochs, dict(logs or {}))

    return EpochProgress()


class MLPClassifier(KerasClassifier):
    """A multilayer perceptron: two wide fully connected layers with batch norm and dropout."""

    name = "mlp"
    title = "Multilayer perceptron"
    artifact_name = "mlp.keras"

    def build_network(self):
        from digitlab.models.networks import build_mlp

        return build_mlp(augment=self.augment, seed=self.initialisation_seed_)


class CNNClassifier(KerasClassifier):
    """A convolutional network: two blocks of 3x3 convolutions with batch norm, then a dense head."""

    name = "cnn"
    title = "Convolutional network"
    artifact_name = "cnn.keras"

    def __init__(
        self,
        *,
        epochs: int = 22,
        batch_size: int = 128,
        learning_rate: float = 2e-3,
        validation_size: int = 5000,
        patience: int = 8,
        augment: bool = True,
        style_share: float = 0.0,
        seed: int = 0,
        initialisation_seed: int | None = None,
    ):
        # Only the default epochs differ from KerasClassifier's; scikit-learn reads the hyperparameters from this
        # signature, so it spells them all out. Validation accuracy levels off after about 20 epochs of the cosine
        # schedule, and 22 epochs keep a full training run within 15 minutes on a 2-core CPU (each epoch takes
        # about 24 s there when it is idle).
        super().__init__(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            validation_size=validation_size,
            patience=patience,
            augment=augment,
            style_share=style_share,
            seed=seed,
            initialisation_seed=initialisation_seed,
        )

    def build_network(self):
        from digitlab.models.networks import build_cnn

        return build_cnn(augment=self.augment, seed=self.initialisation_seed_)
