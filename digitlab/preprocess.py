"""The public path of image preprocessing, ``from digitlab.preprocess import preprocess``, which README examples and
users' scripts import; the code lives in :mod:`digitlab.imaging.preprocess` and the modules beside it."""

from digitlab.imaging.decode import load_image
from digitlab.imaging.preprocess import preprocess

__all__ = ["load_image", "preprocess"]
