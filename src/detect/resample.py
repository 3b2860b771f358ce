"""Area resampling: each output pixel is the mean of the input pixels its cell touches.

This is PyTorch's ``interpolate(mode="area")`` (adaptive average pooling: output cell i of n covers input
pixels floor(i * N / n) .. ceil((i + 1) * N / n) - 1, whole pixels), which the MTCNN weights were run with in
facenet-pytorch; OpenCV's INTER_AREA weights partial pixels instead and moves the landmarks by a fraction of a
pixel. Computed with cumulative sums, one axis at a time (the window is a rectangle, so the mean separates).
"""

import numpy as np


def _windows(size_in, size_out):
    index = np.arange(size_out, dtype=np.int64)
    return (index * size_in) // size_out, ((index + 1) * size_in + size_out - 1) // size_out


def _mean_along(array, axis, size_out):
    starts, ends = _windows(array.shape[axis], size_out)
    sums = np.cumsum(array, axis=axis, dtype=np.float64)
    sums = np.concatenate([np.zeros_like(np.take(sums, [0], axis=axis)), sums], axis=axis)
    shape = [1] * array.ndim
    shape[axis] = size_out
    counts = (ends - starts).reshape(shape)
    return (np.take(sums, ends, axis=axis) - np.take(sums, starts, axis=axis)) / counts


def area_resize(image, height, width):
    """... x H x W x C (any numeric dtype; e.g. one image or a stack) -> ... x height x width x C float32."""
    if height < 1 or width < 1:
        raise ValueError(f"cannot resize to {height}x{width}")
    return _mean_along(_mean_along(image, image.ndim - 3, height), image.ndim - 2, width).astype(np.float32)
