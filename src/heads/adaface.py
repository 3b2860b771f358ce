"""AdaFace (Kim et al., "AdaFace: Quality Adaptive Margin for Face Recognition", CVPR 2022)."""
import math
from typing import ClassVar

import mindspore as ms
from mindspore import Parameter, Tensor, ops

from src.heads.registry import MARGINS
from src.heads.margin import Margin

EPS = 1e-3


def adaface_logits(cos, one_hot, norms, mean, std, s, m, h):
    """Feature-norm adaptive margin. With the feature norm ||z_i|| standardised by the batch statistics mu, sigma:

        z_hat = clip(h (||z_i|| - mu) / (sigma + eps), -1, 1),   g_angle = -m z_hat,   g_add = m z_hat + m,
        logit_y = s (cos(clip(theta_y + g_angle, eps, pi - eps)) - g_add),   logit_j = s cos(theta_j),

    theta = acos(clamp(cos, -1 + eps, 1 - eps)), eps = 1e-3 (as the reference implementation, the clamp and
    acos/cos apply to every class)."""
    scaler = ops.clamp(h * (norms - mean) / (std + EPS), -1.0, 1.0)
    theta = ops.acos(ops.clamp(cos, -1.0 + EPS, 1.0 - EPS))
    theta_m = ops.clamp(theta - one_hot * m * scaler, EPS, math.pi - EPS)
    return s * (ops.cos(theta_m) - one_hot * (m + m * scaler))


@MARGINS.register("adaface")
class AdaFace(Margin):
    """The norms are detached and clipped to [0.001, 100]; mu and sigma (unbiased) are EMAs with momentum
    t_alpha of the batch's, starting at 20 and 100, non-trainable Parameters saved in checkpoints, updated only in
    training. The batch is the global one: a sharded head sees the gathered batch, a replicated head under data
    parallel sums the statistics over the workers (``batch_statistics``)."""

    PARAMS: ClassVar[dict] = {"s": {"type": "float", "default": 64.0, "min": 0.0, "help": "logit scale s"},
              "m": {"type": "float", "default": 0.4, "help": "margin m"},
              "h": {"type": "float", "default": 0.333, "help": "concentration h of the norm-adaptive margin"},
              "t_alpha": {"type": "float", "default": 0.01, "min": 0.0,
                          "help": "EMA momentum of the batch feature-norm statistics"}}
    uses_norms = True

    def __init__(self, num_classes, **params):
        super().__init__(num_classes, **params)
        self.batch_mean = Parameter(Tensor(20.0, ms.float32), name="batch_mean", requires_grad=False)
        self.batch_std = Parameter(Tensor(100.0, ms.float32), name="batch_std", requires_grad=False)
        self.workers = 1
        self.allreduce = None

    def batch_statistics(self, workers):
        if workers > 1:
            self.workers = workers
            self.allreduce = ops.AllReduce()

    def global_sum(self, value):
        if self.workers > 1:
            return self.allreduce(value)
        return value

    def construct(self, cos, one_hot, norms):
        norms = ops.stop_gradient(ops.clamp(norms, 0.001, 100.0))
        if self.training:
            count = norms.shape[0] * self.workers
            mean = self.global_sum(norms.sum()) / count
            variance = self.global_sum(((norms - mean) ** 2).sum()) / max(count - 1, 1)
            ops.assign(self.batch_mean, mean * self.t_alpha + (1.0 - self.t_alpha) * self.batch_mean)
            ops.assign(self.batch_std, ops.sqrt(variance) * self.t_alpha + (1.0 - self.t_alpha) * self.batch_std)
        return adaface_logits(cos, one_hot, norms, self.batch_mean, self.batch_std, self.s, self.m, self.h)
