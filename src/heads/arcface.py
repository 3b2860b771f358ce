"""ArcFace (Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019)."""
import math

from mindspore import ops

from src.heads import HEADS
from src.heads.cosine import CosineHead


@HEADS.register("arcface")
class ArcFaceHead(CosineHead):
    """Additive angular margin: logit_y = s cos(theta_y + m), logit_j = s cos(theta_j) for j != y.

    cos(theta + m) = cos(theta) cos(m) - sin(theta) sin(m), sin(theta) = sqrt(1 - cos^2(theta)).
    Where theta + m > pi (cos(theta) < cos(pi - m)) the target logit falls back to cos(theta) - m sin(m), which
    keeps it decreasing in theta; with ``easy_margin`` the margin applies only where cos(theta) > 0.
    Defaults s = 64, m = 0.5.
    """

    def __init__(self, embedding_size, num_classes, s=64.0, m=0.5, easy_margin=False):
        super().__init__(embedding_size, num_classes)
        self.s, self.m, self.easy_margin = s, m, easy_margin
        self.cos_m, self.sin_m = math.cos(m), math.sin(m)
        self.threshold = math.cos(math.pi - m)
        self.fallback = math.sin(math.pi - m) * m

    def construct(self, x, label):
        cos = self.cosine(x)
        sin = ops.sqrt(ops.clamp(1.0 - cos * cos, 1e-12, 1.0))
        phi = cos * self.cos_m - sin * self.sin_m
        if self.easy_margin:
            phi = ops.where(cos > 0, phi, cos)
        else:
            phi = ops.where(cos > self.threshold, phi, cos - self.fallback)
        one_hot = self.one_hot(label)
        logits = self.s * (one_hot * phi + (1.0 - one_hot) * cos)
        return logits, cos
