"""Class centres: the cell that holds W and gives, for a batch of embeddings, cos(theta) against every centre.

``ClassCentres`` holds all C centres (replicated on every data-parallel worker); ``ShardedClassCentres`` holds
this worker's C/N of them (Partial FC, ``src/heads/partial_fc.py``). ``LinearCentres`` is the softmax
baseline's W x + b (no normalisation). In a training network the Parameter is ``head.centres.weight`` either way,
so a checkpoint moves between replicated and sharded centres (``head.weight`` before the split: see
``src/heads/head.py`` ``legacy_names``).
"""

import math

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import XavierUniform, initializer

EPS = 1e-12
INIT_BLOCK = 4096


def l2_normalize(x, axis=-1, eps=EPS):
    """x / ||x|| along ``axis``, written as ``x * rsqrt(sum(x^2) + eps)`` (``ops.L2Normalize``'s CPU backward is
    pathologically slow), finite at x = 0."""
    return x * ops.rsqrt((x * x).sum(axis=axis, keepdims=True) + eps)


def feature_norm(x, eps=EPS):
    """||x|| per row (B x 1), with a finite gradient at x = 0."""
    return ops.sqrt((x * x).sum(axis=1, keepdims=True) + eps)


def cosine(x, weight, matmul_transpose_b):
    """clamp(x/||x|| . (W_j/||W_j||), -1, 1) as one MatMul with ``transpose_b`` (``matmul(x, W.T)`` adds a
    Transpose of W, forward and backward). W is re-normalised every call: it changes every training step, and the
    normalisation costs little next to the product (benchmarks/bench_ops.py, case ``cosine``)."""
    return ops.clamp(matmul_transpose_b(l2_normalize(x), l2_normalize(weight)), -1.0, 1.0)


class ClassCentres(nn.Cell):
    """W (num_classes x embedding_size); ``construct(x)`` = cos(theta) (B x num_classes)."""

    normalised = True

    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.weight = Parameter(initializer(XavierUniform(), (num_classes, embedding_size), ms.float32), name="weight")
        self.matmul_transpose_b = ops.MatMul(transpose_b=True)

    def construct(self, x):
        return cosine(x, self.weight, self.matmul_transpose_b)


class LinearCentres(nn.Cell):
    """The softmax baseline's unnormalised scores W x + b (B x num_classes)."""

    normalised = False

    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.fc = nn.Dense(embedding_size, num_classes, weight_init=XavierUniform(), bias_init="zeros")

    def construct(self, x):
        return self.fc(x)


def shard_range(num_classes, workers, rank):
    """(start, count) of worker ``rank``'s classes: C // N each, the first C mod N one more."""
    base, extra = divmod(num_classes, workers)
    return base * rank + min(rank, extra), base + int(rank < extra)


def init_centres(num_classes, embedding_size, start, count, seed):
    """Rows [start, start + count) of a Xavier-uniform C x D matrix, generated in blocks of 4,096 rows each from
    its own (seed, block) stream: the same matrix on any number of workers, and no worker builds more than its
    rows and one block."""
    bound = math.sqrt(6.0 / (num_classes + embedding_size))
    rows = np.empty((count, embedding_size), np.float32)
    for block in range(start // INIT_BLOCK, (start + count - 1) // INIT_BLOCK + 1):
        values = np.random.default_rng([seed, block]).uniform(-bound, bound, (INIT_BLOCK, embedding_size))
        low, high = max(start - block * INIT_BLOCK, 0), min(start + count - block * INIT_BLOCK, INIT_BLOCK)
        rows[block * INIT_BLOCK + low - start : block * INIT_BLOCK + high - start] = values[low:high]
    return rows


class ShardedClassCentres(nn.Cell):
    """Worker ``rank``'s rows of the C x D centres (``shard_range``); ``construct(x, index)`` = cos(theta) of ``x``
    against them (B x C_r), or against the rows ``index`` only."""

    def __init__(self, embedding_size, num_classes, workers, rank, seed):
        super().__init__()
        self.num_classes = num_classes
        self.start, self.count = shard_range(num_classes, workers, rank)
        if self.count == 0:
            raise ValueError(f"{num_classes} classes cannot be sharded over {workers} workers")
        self.weight = Parameter(
            Tensor(init_centres(num_classes, embedding_size, self.start, self.count, seed)), name="weight"
        )
        self.matmul_transpose_b = ops.MatMul(transpose_b=True)

    def construct(self, x, index=None):
        weight = self.weight if index is None else ops.gather(self.weight, index, 0)
        return cosine(x, weight, self.matmul_transpose_b)
