"""Probabilities for a one-vs-one SVM from its pairwise margins, with a confidence that tells right from wrong.

scikit-learn's one-vs-rest view of a multi-class SVC counts each digit's
pairwise votes and adds its summed pairwise margins squashed into (-1/3, 1/3).
Nearly every image gives its winner 9 votes and the runner-up 8, so a
temperature-scaled softmax of those values sees about the same gap
everywhere: the shipped SVM used to say about 98.5 % for almost every image,
a letter A included, and its confidence separated right from wrong answers
with an AUROC of 0.85.

The winner's weakest pairwise win (its smallest margin over the nine other
digits) says much more: ``scripts/calibrate_svm.py`` compares it with other
calibrations on held-out training images. Here the winner's probability is a
Platt fit (a logistic regression of right against wrong) on that margin, and
the other digits share the rest as a temperature-scaled softmax of the
one-vs-rest values shares it. The winner is never changed: its probability is
kept above every other digit's.
"""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

# How far the winner's probability stays above the next digit's at least: half a percentage point, so that
# neither the six decimals a reading is rounded to nor the float16 of the stored test probabilities (steps of
# about 0.0005 near 1) can tie them and hand the answer to another digit.
MINIMUM_LEAD = 0.005
# Platt scaling is a plain logistic fit; this weak penalty only keeps it finite when the classes separate.
PLATT_C = 1e4


def one_vs_rest(pairwise: np.ndarray, classes: int) -> np.ndarray:
    """scikit-learn's one-vs-rest values from one-vs-one ones: votes plus squashed summed margins."""
    # The same transform that SVC.decision_function applies; a test checks that the two agree.
    from sklearn.utils.multiclass import _ovr_decision_function

    return _ovr_decision_function(pairwise < 0, -pairwise, classes)


def margin_matrix(pairwise: np.ndarray, classes: int) -> np.ndarray:
    """``(n, classes, classes)``: entry ``[i, j]`` is how far digit ``i`` beats ``j`` in their classifier."""
    first, second = np.triu_indices(classes, k=1)
    margins = np.zeros((len(pairwise), classes, classes))
    margins[:, first, second] = pairwise
    margins[:, second, first] = -pairwise
    return margins


def weakest_wins(pairwise: np.ndarray, winners: np.ndarray, classes: int) -> np.ndarray:
    """Each winner's smallest margin over the other digits (negative where it lost a pairwise vote)."""
    rows = np.arange(len(winners))
    margins = margin_matrix(pairwise, classes)[rows, winners]
    margins[rows, winners] = np.inf
    return margins.min(axis=1)


def with_confidence(probabilities: np.ndarray, winners: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Probabilities whose winners have ``confidence`` and whose other digits share the rest as in ``probabilities``.

    A confidence too low to keep the winner first is raised until it leads the next digit by ``MINIMUM_LEAD``.
    """
    rows = np.arange(len(winners))
    shares = np.asarray(probabilities, dtype=np.float64).copy()
    shares[rows, winners] = 0.0
    shares /= shares.sum(axis=1, keepdims=True)
    # With c on the winner, the largest other digit gets (1 - c) * s: c leads it by lead once c >= (s + lead) / (1 + s).
    largest_share = shares.max(axis=1)
    confidence = np.clip(np.maximum(confidence, (largest_share + MINIMUM_LEAD) / (1 + largest_share)), 0.0, 1.0)
    result = shares * (1 - confidence)[:, None]
    result[rows, winners] = confidence
    return result


class MarginCalibratedSVC(ClassifierMixin, BaseEstimator):
    """A fitted pipeline ending in an ``SVC`` whose probabilities come from its pairwise margins.

    ``fit`` only calibrates: call it with images the pipeline never trained
    on. It makes the SVC report one-vs-one decision values and sets
    ``inverse_temperature_`` (the softmax that shares the losers'
    probability, fitted by multinomial log-loss) and ``platt_`` (the
    winner's probability from its weakest win; None when the calibration
    images hold only right or only wrong answers, and the softmax's own top
    probability is used instead).
    """

    def __init__(self, pipeline=None):
        self.pipeline = pipeline

    @property
    def svc(self):
        return self.pipeline.steps[-1][1]

    def pairwise_margins(self, flat_images: np.ndarray) -> np.ndarray:
        """``(n, 45)`` for ten digits: the one-vs-one decision values, positive where the first digit wins."""
        return self.pipeline.decision_function(flat_images)

    def fit(self, flat_images, labels):
        labels = np.asarray(labels)
        # The SVC reports libsvm's one-vs-one values from now on (predicting threads share it, so it is set
        # once here, not per call); its libsvm model and its votes are unchanged.
        self.svc.set_params(decision_function_shape="ovo")
        self.classes_ = self.svc.classes_
        pairwise = self.pairwise_margins(flat_images)
        scores = one_vs_rest(pairwise, len(self.classes_))
        targets = np.searchsorted(self.classes_, labels)

        def log_loss(log_inverse_temperature: float) -> float:
            scaled = log_softmax(scores * np.exp(log_inverse_temperature), axis=1)
            return -float(scaled[np.arange(len(targets)), targets].mean())

        self.inverse_temperature_ = float(np.exp(minimize_scalar(log_loss, bounds=(-10.0, 10.0)).x))
        winners = scores.argmax(axis=1)
        right = (winners == targets).astype(int)
        self.platt_ = None
        if 0 < right.sum() < len(right):
            weakest = weakest_wins(pairwise, winners, len(self.classes_))[:, None]
            self.platt_ = LogisticRegression(C=PLATT_C).fit(weakest, right)
        return self

    def predict_proba(self, flat_images) -> np.ndarray:
        pairwise = self.pairwise_margins(flat_images)
        scores = one_vs_rest(pairwise, len(self.classes_))
        shares = softmax(scores * self.inverse_temperature_, axis=1)
        if self.platt_ is None:
            return shares
        winners = scores.argmax(axis=1)
        confidence = self.platt_.predict_proba(weakest_wins(pairwise, winners, len(self.classes_))[:, None])[:, 1]
        return with_confidence(shares, winners, confidence)

    def predict(self, flat_images) -> np.ndarray:
        return self.classes_[self.predict_proba(flat_images).argmax(axis=1)]
