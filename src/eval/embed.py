"""Embedding images with a backbone (a Cell in eval mode, or an exported MINDIR as ``nn.GraphCell``), with the
horizontal flip, and fusing the two embeddings."""

import logging
import time

import mindspore as ms
import numpy as np

from src.data.image_io import to_input

LOG = logging.getLogger("facerec.eval")
FUSIONS = ("orig", "concat", "sum")
FUSION_DESCRIPTIONS = {
    "orig": "the embedding of the image alone",
    "concat": "[f(image), f(mirrored image)] concatenated (SphereFace)",
    "sum": "f(image) + f(mirrored image)",
}


def run_batches(network, inputs, batch_size):
    """Run ``network`` on NCHW float32 ``inputs`` in batches of exactly ``batch_size`` (the last one padded, for
    exported networks of a fixed batch) and return the stacked float32 outputs."""
    outputs = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size]
        count = len(batch)
        if count < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - count,) + batch.shape[1:], batch.dtype)])
        outputs.append(network(ms.Tensor(batch)).asnumpy()[:count])
    return np.concatenate(outputs).astype(np.float32)


def embed_images(network, images, batch_size, log_every=20):
    """HxWx3 uint8 RGB images -> (embeddings, embeddings of the flipped images); a progress line every
    ``log_every`` batches and at the end (0: silent)."""
    orig, flip = [], []
    start = time.time()
    total = len(images)
    for number, first in enumerate(range(0, total, batch_size), 1):
        chunk = np.stack(images[first : first + batch_size])
        orig.append(run_batches(network, to_input(chunk), batch_size))
        flip.append(run_batches(network, to_input(chunk[:, :, ::-1]), batch_size))
        if log_every and (number % log_every == 0 or first + batch_size >= total):
            done = min(first + batch_size, total)
            rate = 2 * done / max(time.time() - start, 1e-9)
            LOG.info("embedded %d/%d images (+ flips), %.1f img/s", done, total, rate)
    return np.concatenate(orig), np.concatenate(flip)


def fuse(orig, flip, mode):
    """The fused embedding of each image (``FUSION_DESCRIPTIONS``): orig, [orig, flip] or orig + flip."""
    if mode == "orig":
        return orig
    if mode == "concat":
        return np.concatenate([orig, flip], axis=1)
    if mode == "sum":
        return orig + flip
    raise ValueError(f"unknown fusion '{mode}'; choose one of {FUSIONS}")


def cosine_scores(features, first, second):
    """cos(f[first_i], f[second_i]) for every pair."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.maximum(norms, 1e-12)
    return np.sum(unit[first] * unit[second], axis=1)
