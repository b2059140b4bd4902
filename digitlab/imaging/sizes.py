"""Reading a preprocessed digit at more than one size, for the models that read real writing better so.

Preprocessing scales a digit's longer side to MNIST's 20 pixels. A drawing,
scan or photo does not always come out the way MNIST's own digits did (a
pen's width, blur, ink that fills its frame), and a model whose
``reading_sizes`` name more than one size answers with the mean of its
probabilities over the input and over copies of it with the digit scaled
about the field's centre, where the centring by mass put it. The models
themselves are unchanged: their test-set figures score MNIST's images as
they are, and only inputs made from the user's images are read this way."""

import numpy as np
from scipy import ndimage

from digitlab.data.mnist import IMAGE_SIDE
from digitlab.models.base import Predictor, as_image_batch

# The digit stays centred: the field's centre maps to itself.
FIELD_CENTRE = (IMAGE_SIDE - 1) / 2


def scaled_digits(model_inputs: np.ndarray, size: float) -> np.ndarray:
    """The 28x28 inputs with their content scaled by ``size`` about the field's centre (bilinear, uint8)."""
    if size <= 0:
        raise ValueError(f"A reading size must be positive, got {size}.")
    batch = as_image_batch(model_inputs).astype(np.float32)
    # One transform for the whole batch: the first axis maps to itself, so images do not mix.
    matrix = np.diag([1.0, 1 / size, 1 / size])
    offset = FIELD_CENTRE - FIELD_CENTRE / size
    scaled = ndimage.affine_transform(batch, matrix, offset=(0.0, offset, offset), order=1)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def reading_probabilities(model: Predictor, model_inputs: np.ndarray) -> np.ndarray:
    """``model``'s ``(N, 10)`` probabilities for inputs preprocessed from real images, at its reading sizes.

    Predictors that name no sizes (exported files, stand-ins) read each input once, as it is.
    """
    sizes = getattr(model, "reading_sizes", (1.0,))
    batch = as_image_batch(model_inputs)
    if tuple(sizes) == (1.0,):
        return model.predict_proba(batch)
    views = np.concatenate([batch if size == 1.0 else scaled_digits(batch, size) for size in sizes])
    probabilities = model.predict_proba(views)
    return probabilities.reshape(len(sizes), len(batch), probabilities.shape[-1]).mean(axis=0)
