"""Parity of an exported network with its checkpoint: both run on the same batch, compared by the largest
absolute difference of the raw embeddings and the smallest cosine between corresponding embeddings,

    max_abs_diff = max_ij |r_ij - e_ij|,    min_cosine = min_i <r_i, e_i> / (||r_i|| ||e_i||),

where r_i is the checkpoint's embedding of input i and e_i the exported network's. An export passes when
min_cosine >= 0.99999 and, when both ran on the CPU, max_abs_diff <= 1e-4. On a device the absolute bound is
dropped: a GPU (TF32) or an Ascend NPU (HF32, float16) computes float32 layers at lower precision, which moves
each value by more than 1e-4 while the embeddings' directions, which face matching compares, stay put.
"""

import glob
import os

import numpy as np

from src.data.image_io import load_rgb, resize_to, to_input

MAX_ABS_DIFF = 1e-4
MIN_COSINE = 0.99999
IMAGE_PATTERNS = ("*.jpg", "*.jpeg", "*.png", "*.bmp")


def random_inputs(count, image_size, seed=0):
    """``count`` images of seeded uniform random pixels in 0..255, normalised as every input is (NCHW float32)."""
    height, width = image_size
    pixels = np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)
    return to_input(pixels)


def image_inputs(folder, count, image_size):
    """The first ``count`` images (sorted names, repeated when there are fewer) of ``folder`` and its sub-folders,
    already aligned, resized to ``image_size`` and normalised; returns (NCHW float32, the paths used)."""
    paths = sorted(
        path for pattern in IMAGE_PATTERNS for path in glob.glob(os.path.join(folder, "**", pattern), recursive=True)
    )
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_PATTERNS)}) under {folder}")
    chosen = [paths[i % len(paths)] for i in range(count)]
    return to_input(np.stack([resize_to(load_rgb(path), image_size) for path in chosen])), chosen


def parity(reference, exported, on_cpu=True):
    """{'max_abs_diff', 'min_cosine', 'passed'} of two N x E embedding arrays (see the module docstring);
    ``on_cpu``: both ran on the CPU, so the absolute bound applies too."""
    reference, exported = np.asarray(reference, np.float64), np.asarray(exported, np.float64)
    if reference.shape != exported.shape:
        raise ValueError(
            f"the exported network's output shape {exported.shape} differs from the checkpoint's {reference.shape}"
        )
    max_abs_diff = float(np.abs(reference - exported).max())
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(exported, axis=1)
    min_cosine = float(np.min(np.sum(reference * exported, axis=1) / np.maximum(norms, 1e-30)))
    return {
        "max_abs_diff": max_abs_diff,
        "min_cosine": min_cosine,
        "passed": (max_abs_diff <= MAX_ABS_DIFF or not on_cpu) and min_cosine >= MIN_COSINE,
    }
