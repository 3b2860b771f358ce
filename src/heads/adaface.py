"""AdaFace (Kim et al., "AdaFace: Quality Adaptive Margin for Face Recognition", CVPR 2022)."""
import math

import mindspore as ms
from mindspore import ops, Parameter, Tensor

from src.heads import HEADS
from src.heads.cosine import CosineHead, feature_norm

EPS = 1e-3


@HEADS.register("adaface")
class AdaFaceHead(CosineHead):
    """Feature-norm adaptive margin.

    With the feature norm ||z_i|| (detached, clipped to [0.001, 100]) standardised by the batch statistics
    mu_z, sigma_z kept as an EMA with momentum t_alpha,

        z_hat = clip(h (||z_i|| - mu_z) / (sigma_z + eps), -1, 1),
        g_angle = -m z_hat,   g_add = m z_hat + m,
        logit_y = s (cos(clip(theta_y + g_angle, eps, pi - eps)) - g_add),   logit_j = s cos(theta_j),

    theta = acos(clamp(cos, -1 + eps, 1 - eps)), eps = 1e-3 (the reference implementation applies the
    clamp and acos/cos to every class). mu_z, sigma_z start at 20 and 100, are non-trainable Parameters
    saved in checkpoints, and update only in training. Defaults m = 0.4, h = 0.333, s = 64, t_alpha = 0.01.
    """

    def __init__(self, embedding_size, num_classes, s=64.0, m=0.4, h=0.333, t_alpha=0.01):
        super().__init__(embedding_size, num_classes)
        self.s, self.m, self.h, self.t_alpha = s, m, h, t_alpha
        self.batch_mean = Parameter(Tensor(20.0, ms.float32), name="batch_mean", requires_grad=False)
        self.batch_std = Parameter(Tensor(100.0, ms.float32), name="batch_std", requires_grad=False)

    def construct(self, x, label):
        cos = self.cosine(x)
        norms = ops.stop_gradient(ops.clamp(feature_norm(x), 0.001, 100.0))
        if self.training:
            mean = norms.mean()
            count = max(norms.shape[0] - 1, 1)
            std = ops.sqrt(((norms - mean) ** 2).sum() / count)
            ops.assign(self.batch_mean, mean * self.t_alpha + (1.0 - self.t_alpha) * self.batch_mean)
            ops.assign(self.batch_std, std * self.t_alpha + (1.0 - self.t_alpha) * self.batch_std)
        scaler = ops.clamp(self.h * (norms - self.batch_mean) / (self.batch_std + EPS), -1.0, 1.0)
        one_hot = self.one_hot(label)
        theta = ops.acos(ops.clamp(cos, -1.0 + EPS, 1.0 - EPS))
        theta_m = ops.clamp(theta - one_hot * self.m * scaler, EPS, math.pi - EPS)
        logits = self.s * (ops.cos(theta_m) - one_hot * (self.m + self.m * scaler))
        return logits, cos
