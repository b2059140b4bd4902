"""Vectorised affine warps of image stacks, for deskewing.

All images of a stack are warped together with numpy gathers (in chunks, to
bound memory) rather than in a Python loop over images.
"""

import numpy as np

_CHUNK = 8192


def warp_affine(images: np.ndarray, matrices: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Sample each image at ``sources[i] + matrices[i] @ (p - centre)`` for every output pixel p.

    ``images`` is ``(N, H, W)``; ``matrices`` is ``(N, 2, 2)`` in (row, column)
    order; ``sources`` is ``(N, 2)``, the input point that lands on the output
    centre. Bilinear interpolation; pixels from outside the input are 0.
    Returns float32 ``(N, H, W)``.
    """
    count, height, width = images.shape
    centre = np.array([(height - 1) / 2, (width - 1) / 2], dtype=np.float32)
    grid = np.stack(np.mgrid[:height, :width], axis=-1).reshape(-1, 2).astype(np.float32) - centre
    # A one-pixel zero border lets every bilinear neighbour be gathered without bounds checks.
    padded = np.pad(images.astype(np.float32), ((0, 0), (1, 1), (1, 1)))
    flat = padded.reshape(count, -1)
    output = np.empty((count, height * width), dtype=np.float32)
    for start in range(0, count, _CHUNK):
        stop = min(start + _CHUNK, count)
        points = np.einsum("nij,pj->npi", matrices[start:stop], grid) + sources[start:stop, None, :]
        rows = np.clip(points[..., 0] + 1, 0, height + 0.999)
        columns = np.clip(points[..., 1] + 1, 0, width + 0.999)
        top, left = np.floor(rows), np.floor(columns)
        row_weight, column_weight = rows - top, columns - left
        top, left = top.astype(np.intp), left.astype(np.intp)
        chunk = flat[start:stop]

        def at(row_index, column_index, chunk=chunk):
            return np.take_along_axis(chunk, row_index * (width + 2) + column_index, axis=1)

        output[start:stop] = (
            at(top, left) * (1 - row_weight) * (1 - column_weight)
            + at(top, left + 1) * (1 - row_weight) * column_weight
            + at(top + 1, left) * row_weight * (1 - column_weight)
            + at(top + 1, left + 1) * row_weight * column_weight
        )
    return output.reshape(count, height, width)
