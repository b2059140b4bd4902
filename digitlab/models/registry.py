"""The model families by name: the data that the command line, the benchmark and the dashboard loop over.

A new family is one module in ``digitlab/models/`` and one entry here; no page changes.
"""

from digitlab.models.base import DigitClassifier
from digitlab.models.ensemble import EnsembleClassifier
from digitlab.models.neural import CNNClassifier, MLPClassifier
from digitlab.models.svm import SVMClassifier

REGISTRY: dict[str, type[DigitClassifier]] = {
    model.name: model for model in (SVMClassifier, MLPClassifier, CNNClassifier, EnsembleClassifier)
}
