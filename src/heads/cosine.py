"""Shared pieces of the cosine heads: the normalised class weights and cos(theta)."""
import mindspore as ms
from mindspore import nn, ops, Parameter
from mindspore.common.initializer import XavierUniform, initializer

EPS = 1e-12


def l2_normalize(x, axis=-1, eps=EPS):
    """x / ||x|| along ``axis``, written as ``x * rsqrt(sum(x^2) + eps)`` (``ops.L2Normalize``'s CPU backward is
    pathologically slow), finite at x = 0."""
    return x * ops.rsqrt((x * x).sum(axis=axis, keepdims=True) + eps)


def feature_norm(x, eps=EPS):
    """||x|| per row, with a finite gradient at x = 0."""
    return ops.sqrt((x * x).sum(axis=1, keepdims=True) + eps)


class CosineHead(nn.Cell):
    """Holds W (num_classes x embedding_size); ``cosine(x)`` = clamp(x/||x|| . (W_j/||W_j||), -1, 1).

    The product is one MatMul with ``transpose_b`` (``matmul(x, W.T)`` adds a Transpose of W, forward and
    backward). W is re-normalised every call: it changes every training step, and the normalisation costs
    little next to the product (benchmarks/bench_ops.py, case ``cosine``).
    """

    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.weight = Parameter(initializer(XavierUniform(), (num_classes, embedding_size), ms.float32),
                                name="weight")
        self.matmul_transpose_b = ops.MatMul(transpose_b=True)

    def cosine(self, x):
        cos = self.matmul_transpose_b(l2_normalize(x), l2_normalize(self.weight))
        return ops.clamp(cos, -1.0, 1.0)

    def one_hot(self, label, dtype=ms.float32):
        return ops.one_hot(label, self.num_classes, ops.ones((), dtype), ops.zeros((), dtype))
