"""The support vector machine: deskewing, PCA and one global scale, then an RBF SVC, saved with skops."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from digitlab.data.mnist import IMAGE_SHAPE
from digitlab.models.base import DigitClassifier, as_image_batch, validation_split

# The hyperparameters the shipped SVM was tuned to; the command line and the Train page start from them.
DEFAULT_C = 10.0
DEFAULT_GAMMA = 0.02
# SVM batches are split across CPU cores once each core gets at least this many images.
PARALLEL_SVM_MINIMUM = 256

SHIFT_NOTE = "four copies of every deskewed training image, shifted one pixel up, down, left and right"

# Everything a shipped SVM artefact may contain; skops refuses any other type.
SKOPS_TRUSTED_TYPES = [
    "digitlab.models.features.Deskew",
    "digitlab.models.features.GlobalScaler",
    # SVMs saved before the features moved into digitlab.models (runs, promoted models) name the old path.
    "digitlab.features.Deskew",
    "digitlab.features.GlobalScaler",
    "digitlab.models.margins.MarginCalibratedSVC",
    "sklearn.linear_model._logistic.LogisticRegression",
    # SVMs saved before their confidence came from pairwise margins hold sklearn's temperature scaling.
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.pipeline.Pipeline",
    "sklearn.decomposition._pca.PCA",
    "sklearn.svm._classes.SVC",
]


class SVMClassifier(DigitClassifier):
    """Deskewing, PCA and one global scale, then an RBF support vector machine.

    The training set is enlarged with copies shifted by one pixel in each
    direction. Probabilities are calibrated on a held-out part of the
    training set that the SVM never sees: the winner's from its weakest
    pairwise margin, the others' by temperature scaling
    (``digitlab.models.margins``).
    """

    name = "svm"
    title = "Support vector machine"
    artifact_name = "svm.skops"
    reuses = "keeps the fitted SVM and calibrates its probabilities again"

    def __init__(
        self,
        *,
        C: float = DEFAULT_C,
        gamma: float = DEFAULT_GAMMA,
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

    def fit(self, images, labels, *, progress=None, reuse_from=None):
        """Fit the SVM on the training part and calibrate it on the held-out part.

        ``reuse_from`` is the path of an SVM saved with these hyperparameters: its fitted SVM is kept and only
        the calibration is fitted again.
        """
        from sklearn.pipeline import Pipeline

        from digitlab.models.features import Deskew, deskew
        from digitlab.models.margins import MarginCalibratedSVC

        images = as_image_batch(images)
        labels = np.asarray(labels)
        fit_part, calibration_part = validation_split(len(images), self.validation_size, self.seed)
        if reuse_from is not None:
            pipeline = type(self).load(reuse_from).pipeline
        else:
            # Shift after deskewing: deskewing re-centres each digit, which would undo earlier shifts.
            train_images, train_labels = deskew(images[fit_part]), labels[fit_part]
            if self.shifted_copies:
                train_images, train_labels = shifted_copies(train_images, train_labels)
            if progress:
                progress(0, 2, {"stage": f"fitting the SVM on {len(train_images):,} images"})
            classifier = self.build_classifier().fit(train_images.reshape(len(train_images), -1), train_labels)
            pipeline = Pipeline([("deskew", Deskew().fit(images[:1].reshape(1, -1))), *classifier.steps])
        self.reused_ = reuse_from is not None
        if progress:
            progress(1, 2, {"stage": "calibrating probabilities"})
        self.estimator_ = MarginCalibratedSVC(pipeline)
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
        return fitted_pipeline(self.estimator_)

    def training_notes(self):
        notes = {
            "augmentation": SHIFT_NOTE if self.shifted_copies else "none",
            "calibration": f"on {self.validation_size} held-out training images: the predicted digit's probability "
            "by Platt scaling of its weakest pairwise margin, the others' by temperature scaling",
        }
        if getattr(self, "reused_", False):
            notes["calibration"] += " (fitted again to the SVM trained before, which was kept as it was)"
        return notes

    def save(self, path):
        import skops.io

        skops.io.dump(self.estimator_, path)

    @classmethod
    def load(cls, path, *, params=None, members=None):
        import skops.io

        estimator = skops.io.load(path, trusted=SKOPS_TRUSTED_TYPES)
        # Reaching the SVC also checks that the file holds a calibrated pipeline that save wrote.
        svc = fitted_pipeline(estimator).named_steps["svc"]
        if params is None:
            # Without a manifest entry, the artefact itself says what matters most.
            params = {"C": float(svc.C), "gamma": float(svc.gamma)}
        model = cls.from_params(params)
        model.estimator_ = estimator
        return model


def fitted_pipeline(estimator):
    """The deskewing, PCA, scaling and SVC pipeline inside a saved SVM, of this version or an earlier one."""
    from digitlab.models.margins import MarginCalibratedSVC

    if isinstance(estimator, MarginCalibratedSVC):
        return estimator.pipeline
    # Runs and promoted models trained before the margin calibration: sklearn's CalibratedClassifierCV.
    return estimator.calibrated_classifiers_[0].estimator.estimator


def shifted_copies(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The images plus copies shifted one pixel up, down, left and right."""
    shifted = [images]
    for axis, step in ((1, 1), (1, -1), (2, 1), (2, -1)):
        shifted.append(np.roll(images, step, axis=axis))
    return np.concatenate(shifted), np.tile(labels, len(shifted))
