"""SphereFace2 (Wen et al., "SphereFace2: Binary Classification is All You Need for Deep Face Recognition",
ICLR 2022): one binary classifier per class instead of a softmax across classes, so it shards without any
softmax normaliser."""
import math
from typing import ClassVar

import mindspore as ms
from mindspore import Parameter, Tensor, ops

from src.heads.registry import MARGINS
from src.heads.margin import Margin, detached_offset

THETA_MAX = 3.14159


def similarity(cos, t):
    """The similarity adjustment g(cos) = 2 ((cos + 1) / 2)^t - 1."""
    return 2.0 * ops.pow((cos + 1.0) / 2.0, t) - 1.0


def sphereface2_logits(cos, one_hot, r, m, t, bias, magn_type):
    """logit_j = r (cos(theta_j) + d_j) + b, d_j = g'(theta_j) - cos(theta_j) detached (its value is used, not its
    gradient), with the margin of type

        C (additive cosine):   g'_y = g(cos theta_y) - m,   g'_j = g(cos theta_j) + m,
        A (additive angular):  g'_y = g(cos(min(theta_y + m, pi))),   g'_j = g(cos theta_j),
        M (multiplicative):    g'_y = g(cos(min(m theta_y, pi))),     g'_j = g(cos theta_j).

    The loss (``objective = binary``) is, over the B samples and every class,
    (lw / r) (1 / B) sum_i sum_j w_ij log(1 + exp(-(2 [j = y_i] - 1) logit_ij)), w = lambda for the target and
    1 - lambda for the others."""
    if magn_type == "C":
        target = similarity(cos, t) - m * (2.0 * one_hot - 1.0)
    else:
        theta = ops.acos(ops.clamp(cos, -1.0 + 1e-5, 1.0 - 1e-5))
        theta_y = theta + m if magn_type == "A" else theta * m
        theta = ops.clamp(theta + one_hot * (theta_y - theta), 1e-5, THETA_MAX)
        target = similarity(ops.cos(theta), t)
    return r * detached_offset(cos, target) + bias


def initial_bias(num_classes, r, m, t, alpha, magn_type):
    """The bias b that balances the initial loss (the paper's initialisation): with every cos(theta) = 0, z =
    lambda / ((1 - lambda)(C - 1)) and a_y, a_i the target's and the others' logits without b,
    b = log(2 z) - a_i - log(1 - z + sqrt((1 - z)^2 + 4 z exp(a_y - a_i)))."""
    z = alpha / ((1.0 - alpha) * max(num_classes - 1.0, 1.0))
    at_zero = 2.0 * 0.5 ** t - 1.0
    if magn_type == "C":
        a_y, a_i = r * (at_zero - m), r * (at_zero + m)
    else:
        theta_y = min(math.pi, math.pi / 2.0 + m) if magn_type == "A" else min(math.pi, m * math.pi / 2.0)
        a_y, a_i = r * (2.0 * ((math.cos(theta_y) + 1.0) / 2.0) ** t - 1.0), r * at_zero
    root = math.sqrt((1.0 - z) ** 2 + 4.0 * z * math.exp(a_y - a_i))
    return math.log(2.0 * z) - a_i - math.log(1.0 - z + root)


@MARGINS.register("sphereface2")
class SphereFace2(Margin):
    """The bias b is a trainable Parameter (``head.bias``), initialised by ``initial_bias``."""

    PARAMS: ClassVar[dict] = {"r": {"type": "float", "default": 40.0, "min": 0.0, "help": "logit scale r"},
              "m": {"type": "float", "default": 0.4, "help": "margin m"},
              "t": {"type": "float", "default": 3.0, "min": 0.0, "help": "similarity adjustment exponent t"},
              "alpha": {"type": "float", "default": 0.7, "min": 0.0,
                        "help": "lambda: weight of the positive term (1 - lambda: the negatives)"},
              "lw": {"type": "float", "default": 50.0, "min": 0.0, "help": "loss weight (the loss is times lw / r)"},
              "magn_type": {"type": "str", "default": "C", "choices": ["C", "A", "M"],
                            "help": "margin type: C additive cosine, A additive angular, M multiplicative"}}
    objective = "binary"

    def __init__(self, num_classes, **params):
        super().__init__(num_classes, **params)
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"SphereFace2 alpha must be in (0, 1), got {self.alpha}")
        self.positive_weight, self.negative_weight = self.alpha, 1.0 - self.alpha
        bias = initial_bias(num_classes, self.r, self.m, self.t, self.alpha, self.magn_type)
        self.bias = Parameter(Tensor(bias, ms.float32), name="bias")

    @property
    def loss_weight(self):
        return self.lw / self.r

    def construct(self, cos, one_hot, norms):
        return sphereface2_logits(cos, one_hot, self.r, self.m, self.t, self.shared(self.bias), self.magn_type)
