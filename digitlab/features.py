"""The path under which SVM artefacts saved before the package had subfolders name their feature steps.

Users' training runs and promoted models keep such ``.skops`` files; skops imports the types from the path
it recorded, so that path must go on existing. The code lives in :mod:`digitlab.models.features`.
"""

from digitlab.models.features import Deskew, GlobalScaler

__all__ = ["Deskew", "GlobalScaler"]
