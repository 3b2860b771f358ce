"""A-Softmax, the SphereFace head (Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition",
CVPR 2017)."""
import math
from typing import ClassVar

import mindspore as ms
from mindspore import Parameter, Tensor, ops

from src.heads.registry import MARGINS
from src.heads.margin import Margin

# cos(m theta) as a polynomial of c = cos(theta) (Chebyshev polynomials T_m), coefficients from c^m down to c^0.
CHEBYSHEV = {
    1: (1.0, 0.0),
    2: (2.0, 0.0, -1.0),
    3: (4.0, 0.0, -3.0, 0.0),
    4: (8.0, 0.0, -8.0, 0.0, 1.0),
}


def psi(cos, m):
    """psi(theta) = (-1)^k cos(m theta) - 2k for theta in [k pi / m, (k + 1) pi / m], from c = cos(theta) in
    [-1, 1]: cos(m theta) = T_m(c) by Horner's rule, k by comparing c with cos(j pi / m), so no acos is needed
    and the gradient is finite everywhere."""
    c = ops.stop_gradient(cos)
    k = ops.zeros_like(cos)
    for j in range(1, m):
        k = k + (c <= math.cos(j * math.pi / m)).astype(cos.dtype)
    value = ops.zeros_like(cos)
    for coefficient in CHEBYSHEV[m]:
        value = value * cos + coefficient
    sign = 1.0 - 2.0 * (k - 2.0 * ops.floor(k / 2.0))
    return sign * value - 2.0 * k


def asoftmax_logits(cos, one_hot, norms, lam, m):
    """Angular softmax with multiplicative margin m, W_j normalised and x not:

        logit_y = ||x|| (lambda cos(theta_y) + psi(theta_y)) / (1 + lambda),   logit_j = ||x|| cos(theta_j),

    psi continuous and decreasing on [0, pi] (see ``psi``)."""
    target = (lam * cos + psi(cos, m)) / (1.0 + lam)
    return norms * (one_hot * target + (1.0 - one_hot) * cos)


@MARGINS.register("asoftmax")
class ASoftmax(Margin):
    """The blend lambda anneals with the training iteration: lambda = max(lambda_min, base (1 + gamma it)^-power)
    (defaults as in the released Caffe prototxt). ``iteration`` is a Parameter, saved in and restored from
    checkpoints; it advances once per training forward."""

    PARAMS: ClassVar[dict] = {"m": {"type": "int", "default": 4, "min": 1, "help": "multiplicative angular margin m (1..4)"},
              "base": {"type": "float", "default": 1000.0, "help": "lambda = max(lambda_min, base (1 + gamma it)^-power)"},
              "gamma": {"type": "float", "default": 0.12, "help": "lambda: gamma"},
              "power": {"type": "float", "default": 1.0, "help": "lambda: power"},
              "lambda_min": {"type": "float", "default": 5.0, "help": "lambda: lower bound"}}
    uses_norms = True

    def __init__(self, num_classes, **params):
        super().__init__(num_classes, **params)
        if int(self.m) != self.m or int(self.m) not in CHEBYSHEV:
            raise ValueError(f"A-Softmax margin m must be an integer in 1..4, got {self.m}")
        self.m = int(self.m)
        self.iteration = Parameter(Tensor(0, ms.int32), name="iteration", requires_grad=False)

    def lambda_value(self):
        """lambda at the current iteration."""
        it = self.iteration.astype(ms.float32)
        lam = self.base * ops.pow(1.0 + self.gamma * it, -self.power)
        return ops.clamp(lam, min=self.lambda_min)

    def construct(self, cos, one_hot, norms):
        lam = self.lambda_value()
        if self.training:
            ops.assign_add(self.iteration, ops.ones((), ms.int32))
        return asoftmax_logits(cos, one_hot, norms, lam, self.m)
