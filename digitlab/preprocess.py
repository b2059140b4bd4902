"""The public path of image preprocessing, ``from digitlab.preprocess import preprocess``, which README examples and
users' scripts import; the code lives in :mod:`digitlab.imaging.preprocess`."""

from digitlab.imaging.preprocess import load_image, preprocess

__all__ = ["load_image", "preprocess"]
