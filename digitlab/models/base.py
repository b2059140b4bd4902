"""The model families, behind one scikit-learn-style interface, and their registry.

Every family takes MNIST-format ``uint8`` images of shape ``(N, 28, 28)``:
``fit(images, labels)`` returns the model, ``predict_proba`` returns ``(N, 10)``
probabilities, ``predict`` the most probable digits. ``REGISTRY`` is the data
that the command line, the benchmark and the dashboard loop over, so a new
family is added here and nowhere else.
"""

import itertools
import json
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from digitlab.atomic import save_atomically

IMAGE_SHAPE = (28, 28)
CLASSES = 10
# Above this many images, Keras predictions are made in batches of this size.
PREDICTION_BATCH = 2048
# SVM batches are split across CPU cores once each core gets at least this many images.
PARALLEL_SVM_MINIMUM = 256

SHIFT_NOTE = "four copies of every deskewed training image, shifted one pixel up, down, left and right"

ProgressCallback = Callable[[int, int, dict], None]


def as_image_batch(images: np.ndarray) -> np.ndarray:
    """Validate MNIST-format input and add a batch axis to a single image."""
    array = np.asarray(images)
    if array.shape == IMAGE_SHAPE:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"Expected images of shape (N, 28, 28), got {array.shape}.")
    return array


def validation_split(count: int, validation_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a random training part and a held-out validation part.

    The validation part is ``validation_size`` images, but never more than a
    tenth of the data, so small training runs keep most of their images.
    """
    validation_size = min(validation_size, count // 10)
    if validation_size < 1:
        raise ValueError(f"Need at least 10 training images to hold some out for validation, got {count}.")
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[validation_size:]), np.sort(order[:validation_size])


class DigitClassifier(ABC):
    """The interface every model family implements."""

    name: ClassVar[str]
    title: ClassVar[str]
    artifact_name: ClassVar[str]
    # Families that combine other trained families name them here; training passes them in.
    members: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def fit(self, images: np.ndarray, labels: np.ndarray, *, progress: ProgressCallback | None = None):
        """Fit on training images and labels; return ``self``."""

    @abstractmethod
    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of shape ``(N, 10)``, rows summing to 1."""

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.predict_proba(images).argmax(axis=1)

    @abstractmethod
    def get_params(self) -> dict[str, Any]:
        """The hyperparameters the model was built with."""

    @abstractmethod
    def complexity(self) -> dict[str, int]:
        """Size of the fitted model, e.g. its parameter or support-vector count."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the fitted model to ``path`` in a format that executes no code on load."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> "DigitClassifier":
        """Read a model written by :meth:`save`."""

    def training_notes(self) -> dict[str, Any]:
        """What the manifest should record about how the model was trained."""
        return {}

    def extra_artifacts(self) -> list[str]:
        """Files that :meth:`save` writes beside the artefact and that belong to it."""
        return []


class SVMClassifier(DigitClassifier):
    """Deskewing, PCA and one global scale, then an RBF support vector machine.

    The training set is enlarged with copies shifted by one pixel in each
    direction; probabilities are calibrated by temperature scaling on a
    held-out part of the training set that the SVM never sees.
    """

    name = "svm"
    title = "Support vector machine"
    artifact_name = "svm.skops"

    def __init__(
        self,
        C: float = 10.0,
        gamma: float = 0.02,
        pca_components: int = 70,
        shifted_copies: bool = True,
        validation_size: int = 5000,
        seed: int = 0,
    ):
        self.C = C
        self.gamma = gamma
        self.pca_components = pca_components
        self.shifted_copies = shifted_copies
        self.validation_size = validation_size
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "gamma": self.gamma,
            "pca_components": self.pca_components,
            "shifted_copies": self.shifted_copies,
            "validation_size": self.validation_size,
            "seed": self.seed,
        }

    def build_classifier(self):
        """The steps after deskewing: PCA, one global scale and the RBF SVM."""
        from sklearn.decomposition import PCA
        from sklearn.pipeline import Pipeline
        from sklearn.svm import SVC

        from digitlab.models.features import GlobalScaler

        return Pipeline(
            [
                ("pca", PCA(n_components=self.pca_components, random_state=self.seed)),
                ("scale", GlobalScaler()),
                ("svc", SVC(C=self.C, gamma=self.gamma, cache_size=2000, random_state=self.seed)),
            ]
        )

    def fit(self, images, labels, *, progress=None):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator
        from sklearn.pipeline import Pipeline

        from digitlab.models.features import Deskew, deskew

        images = as_image_batch(images)
        labels = np.asarray(labels)
        fit_part, calibration_part = validation_split(len(images), self.validation_size, self.seed)
        # Shift after deskewing: deskewing re-centres each digit, which would undo earlier shifts.
        train_images, train_labels = deskew(images[fit_part]), labels[fit_part]
        if self.shifted_copies:
            train_images, train_labels = shifted_copies(train_images, train_labels)
        if progress:
            progress(0, 2, {"stage": f"fitting the SVM on {len(train_images):,} images"})
        classifier = self.build_classifier().fit(train_images.reshape(len(train_images), -1), train_labels)
        pipeline = Pipeline([("deskew", Deskew().fit(images[:1].reshape(1, -1))), *classifier.steps])
        if progress:
            progress(1, 2, {"stage": "calibrating probabilities"})
        self.estimator_ = CalibratedClassifierCV(FrozenEstimator(pipeline), method="temperature")
        self.estimator_.fit(images[calibration_part].reshape(len(calibration_part), -1), labels[calibration_part])
        if progress:
            progress(2, 2, {"stage": "done"})
        return self

    def predict_proba(self, images):
        flat = as_image_batch(images).reshape(-1, IMAGE_SHAPE[0] * IMAGE_SHAPE[1])
        workers = min(os.cpu_count() or 1, len(flat) // PARALLEL_SVM_MINIMUM)
        if workers < 2:
            return self.estimator_.predict_proba(flat)
        # libsvm releases the GIL while predicting, so threads over chunks use every core.
        with ThreadPoolExecutor(workers) as pool:
            return np.concatenate(list(pool.map(self.estimator_.predict_proba, np.array_split(flat, workers))))

    def complexity(self):
        svc = self.pipeline.named_steps["svc"]
        return {"support_vectors": int(svc.n_support_.sum())}

    @property
    def pipeline(self):
        return self.estimator_.calibrated_classifiers_[0].estimator.estimator

    def training_notes(self):
        return {
            "augmentation": SHIFT_NOTE if self.shifted_copies else "none",
            "calibration": f"temperature scaling on {self.validation_size} held-out training images",
        }

    def save(self, path):
        import skops.io

        skops.io.dump(self.estimator_, path)

    @classmethod
    def load(cls, path):
        import skops.io

        from digitlab.persistence import SKOPS_TRUSTED_TYPES

        estimator = skops.io.load(path, trusted=SKOPS_TRUSTED_TYPES)
        svc = estimator.calibrated_classifiers_[0].estimator.estimator.named_steps["svc"]
        model = cls(C=float(svc.C), gamma=float(svc.gamma))
        model.estimator_ = estimator
        return model


def shifted_copies(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The images plus copies shifted one pixel up, down, left and right."""
    shifted = [images]
    for axis, step in ((1, 1), (1, -1), (2, 1), (2, -1)):
        shifted.append(np.roll(images, step, axis=axis))
    return np.concatenate(shifted), np.tile(labels, len(shifted))


class KerasClassifier(DigitClassifier):
    """Shared training and inference for the Keras families.

    Training holds out part of the training set for validation, follows a
    cosine learning-rate schedule with a one-epoch warm-up, and stops early
    (keeping the best weights) when validation accuracy stops improving.
    """

    def __init__(
        self,
        epochs: int = 30,
        batch_size: int = 128,
        learning_rate: float = 2e-3,
        validation_size: int = 5000,
        patience: int = 8,
        augment: bool = True,
        seed: int = 0,
        initialisation_seed: int | None = None,
    ):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_size = validation_size
        self.patience = patience
        self.augment = augment
        self.seed = seed
        # The held-out split always follows ``seed``, so networks that differ only in how they were
        # initialised, shuffled and augmented are validated on the same images and can be weighed together.
        self.initialisation_seed = seed if initialisation_seed is None else initialisation_seed

    def get_params(self):
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "validation_size": self.validation_size,
            "patience": self.patience,
            "augment": self.augment,
            "seed": self.seed,
            "initialisation_seed": self.initialisation_seed,
        }

    @abstractmethod
    def build_network(self):
        """A fresh, uncompiled Keras model."""

    def fit(self, images, labels, *, progress=None, verbose: int | str = 0):
        import keras

        images = as_image_batch(images)
        labels = np.asarray(labels)
        keras.utils.set_random_seed(self.initialisation_seed)
        train_part, validation_part = validation_split(len(images), self.validation_size, self.seed)
        network = self.build_network()
        steps_per_epoch = math.ceil(len(train_part) / self.batch_size)
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
            callbacks.append(_epoch_progress_callback(progress, self.epochs))
        history = network.fit(
            _network_input(images[train_part]),
            labels[train_part],
            validation_data=(_network_input(images[validation_part]), labels[validation_part]),
            epochs=self.epochs,
            batch_size=self.batch_size,
            callbacks=callbacks,
            verbose=verbose,
        )
        self._set_network(network)
        self.history_ = {key: [float(value) for value in values] for key, values in history.history.items()}
        return self

    def _set_network(self, network) -> None:
        import tensorflow as tf

        self.network_ = network

        def forward(batch):
            return network(batch, training=False)

        # A traced function avoids Model.predict's per-call overhead, which dominates single images.
        self._forward = tf.function(
            forward,
            input_signature=[tf.TensorSpec([None, *IMAGE_SHAPE, 1], tf.float32)],
            reduce_retracing=True,
        )

    def predict_proba(self, images):
        batch = _network_input(as_image_batch(images))
        parts = [
            self._forward(batch[start : start + PREDICTION_BATCH]).numpy()
            for start in range(0, len(batch), PREDICTION_BATCH)
        ]
        probabilities = np.concatenate(parts).astype(np.float64)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

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
        if hasattr(self, "history_"):
            notes["epochs_run"] = len(self.history_.get("loss", []))
        return notes

    def save(self, path):
        # A copy rebuilt from the configuration is uncompiled, so the optimiser's state (twice the weights'
        # size, of no use for inference) stays out of the file; keras.models.clone_model would keep it.
        weights_only = type(self.network_).from_config(self.network_.get_config())
        weights_only.set_weights(self.network_.get_weights())
        weights_only.save(path)

    @classmethod
    def load(cls, path):
        import keras

        model = cls()
        model._set_network(keras.saving.load_model(path, compile=False, safe_mode=True))
        return model


def _network_input(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32)[..., None]


def _epoch_progress_callback(progress: ProgressCallback, epochs: int):
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

        return build_mlp(augment=self.augment, seed=self.initialisation_seed)


class CNNClassifier(KerasClassifier):
    """A convolutional network: two blocks of 3x3 convolutions with batch norm, then a dense head."""

    name = "cnn"
    title = "Convolutional network"
    artifact_name = "cnn.keras"

    def __init__(self, epochs: int = 22, **hyperparameters):
        # Validation accuracy levels off after about 20 epochs of the cosine schedule, and 22 epochs keep a
        # full training run within 15 minutes on a 2-core CPU (each epoch takes about 24 s there when it is idle).
        super().__init__(epochs=epochs, **hyperparameters)

    def build_network(self):
        from digitlab.models.networks import build_cnn

        return build_cnn(augment=self.augment, seed=self.initialisation_seed)


class EnsembleClassifier(DigitClassifier):
    """A weighted soft vote of the other trained families, the CNN's vote cast by a committee of CNNs.

    The committee is the shipped CNN and extra copies of its network that
    the ensemble trains itself with other initialisation seeds (so other
    starting weights, shuffles and augmentations) on the same images; the
    committee's vote is their average. Networks that differ only in their
    seed make partly different mistakes, which the average cancels out. All
    of them hold out the same validation part of the training set as every
    other member.

    The weights make the fewest mistakes on that validation part, ties going
    to the lowest log-loss, searched on a grid over the simplex. Log-loss
    alone rewards calibration over diversity: it gives no weight to a member
    whose probabilities are overconfident even when its mistakes are the ones
    the others do not make.
    """

    name = "ensemble"
    title = "Ensemble (weighted soft vote)"
    artifact_name = "ensemble.json"
    members = ("svm", "mlp", "cnn")
    # The member whose vote the ensemble's own extra networks join.
    committee_member = "cnn"

    def __init__(
        self,
        trained_members=None,
        extra_cnn_seeds: tuple[int, ...] = (1, 2, 3, 4),
        epochs: int | None = None,
        grid_steps: int = 20,
        validation_size: int = 5000,
        seed: int = 0,
    ):
        self.trained_members = trained_members
        self.extra_cnn_seeds = tuple(extra_cnn_seeds)
        self.epochs = epochs
        self.grid_steps = grid_steps
        self.validation_size = validation_size
        self.seed = seed

    def get_params(self):
        return {
            "members": list(self.members),
            "extra_cnn_seeds": list(self.extra_cnn_seeds),
            "epochs": self.epochs,
            "grid_steps": self.grid_steps,
            "validation_size": self.validation_size,
            "seed": self.seed,
        }

    def fit(self, images, labels, *, progress=None):
        if not self.trained_members:
            raise ValueError("An ensemble is fitted from trained members; pass trained_members={name: model}.")
        images = as_image_batch(images)
        labels = np.asarray(labels)
        self.extra_networks_ = self._fit_extra_networks(images, labels, progress)
        _, held_out = validation_split(len(images), self.validation_size, self.seed)
        votes = np.stack([self._vote(name, images[held_out]) for name in self.trained_members])
        truth = labels[held_out]
        best_weights, best_score = None, (np.inf, np.inf)
        for weights in simplex_grid(len(self.trained_members), self.grid_steps):
            mixed = np.tensordot(weights, votes, axes=1)
            errors = int((mixed.argmax(axis=1) != truth).sum())
            loss = -np.log(np.clip(mixed[np.arange(len(truth)), truth], 1e-12, None)).mean()
            if (errors, loss) < best_score:
                best_weights, best_score = weights, (errors, loss)
        self.weights_ = dict(zip(self.trained_members, best_weights.round(4).tolist(), strict=True))
        self.validation_errors_, self.validation_log_loss_ = best_score[0], float(best_score[1])
        if progress:
            steps = self._progress_steps()
            progress(
                steps,
                steps,
                {"validation_errors": self.validation_errors_, "validation_log_loss": self.validation_log_loss_},
            )
        return self

    def _progress_steps(self) -> int:
        """One step per extra network's epoch, and one for the weight search."""
        return len(self.extra_cnn_seeds) * (self.epochs or CNNClassifier().epochs) + 1

    def _fit_extra_networks(self, images, labels, progress) -> dict[str, "CNNClassifier"]:
        networks = {}
        epochs = {"epochs": self.epochs} if self.epochs else {}
        for position, initialisation_seed in enumerate(self.extra_cnn_seeds):
            name = f"cnn-seed{initialisation_seed}"
            network = CNNClassifier(
                validation_size=self.validation_size, seed=self.seed, initialisation_seed=initialisation_seed, **epochs
            )

            def report(done, total, details, position=position, name=name):
                progress(position * total + done, self._progress_steps(), {"network": name, **details})

            networks[name] = network.fit(images, labels, progress=report if progress else None)
        return networks

    def _vote(self, name: str, images: np.ndarray) -> np.ndarray:
        """A member's probabilities; the CNN's are averaged with the ensemble's own extra networks'."""
        voters = [self.trained_members[name]]
        if name == self.committee_member:
            voters += list(self.extra_networks_.values())
        return np.mean([voter.predict_proba(images) for voter in voters], axis=0)

    def predict_proba(self, images):
        images = as_image_batch(images)
        mixed = sum(weight * self._vote(name, images) for name, weight in self.weights_.items() if weight > 0)
        return mixed / mixed.sum(axis=1, keepdims=True)

    def complexity(self):
        return {"member_models": sum(weight > 0 for weight in self.weights_.values())}

    def training_notes(self):
        notes = {
            "weights": self.weights_,
            "weight_selection": f"fewest errors on {self.validation_size} held-out training images, "
            "ties broken by the lowest log-loss",
            "cnn_committee": f"the CNN's vote is the average of the shipped CNN and its network trained again "
            f"with initialisation seeds {list(self.extra_cnn_seeds)}",
        }
        if hasattr(self, "validation_errors_"):
            notes["validation_errors"] = self.validation_errors_
            notes["validation_log_loss"] = round(self.validation_log_loss_, 5)
        return notes

    def extra_artifacts(self):
        return [self.network_file(name) for name in self.extra_networks_]

    @staticmethod
    def network_file(name: str) -> str:
        return f"ensemble-{name}.keras"

    def save(self, path):
        from digitlab.persistence import sha256_file

        folder = Path(path).parent
        members = {}
        for name, weight in self.weights_.items():
            artifact = folder / self.trained_members[name].artifact_name
            members[name] = {"weight": weight, "sha256": sha256_file(artifact) if artifact.exists() else None}
        networks = {}
        for name, network in self.extra_networks_.items():
            destination = folder / self.network_file(name)
            save_atomically(destination, network.save)
            networks[name] = {
                "artifact": destination.name,
                "sha256": sha256_file(destination),
                "initialisation_seed": network.initialisation_seed,
            }
        Path(path).write_text(json.dumps({"members": members, "extra_networks": networks}, indent=1) + "\n")

    @classmethod
    def load(cls, path):
        from digitlab.persistence import load_model, read_manifest, sha256_file

        folder = Path(path).parent
        described = json.loads(Path(path).read_text())
        recorded = read_manifest(folder)["models"]
        for name, member in described["members"].items():
            if member["sha256"] != recorded.get(name, {}).get("sha256"):
                raise ValueError(f"the ensemble was fitted to another {name} model; retrain the ensemble.")
        networks = described.get("extra_networks", {})
        for network in networks.values():
            if sha256_file(folder / network["artifact"]) != network["sha256"]:
                raise ValueError(f"{network['artifact']} was modified or damaged; retrain the ensemble.")
        model = cls(
            trained_members={name: load_model(name, folder) for name in described["members"]},
            extra_cnn_seeds=tuple(network["initialisation_seed"] for network in networks.values()),
        )
        model.extra_networks_ = {
            name: CNNClassifier.load(folder / network["artifact"]) for name, network in networks.items()
        }
        model.weights_ = {name: member["weight"] for name, member in described["members"].items()}
        return model


def simplex_grid(dimensions: int, steps: int) -> list[np.ndarray]:
    """Every weight vector with ``dimensions`` entries in multiples of 1/steps that sum to 1."""
    vectors = []
    for combination in itertools.product(range(steps + 1), repeat=dimensions - 1):
        if sum(combination) <= steps:
            vectors.append(np.array([*combination, steps - sum(combination)], dtype=np.float64) / steps)
    return vectors


REGISTRY: dict[str, type[DigitClassifier]] = {
    model.name: model for model in (SVMClassifier, MLPClassifier, CNNClassifier, EnsembleClassifier)
}
