"""ArcFace (Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019)."""
import math
from typing import ClassVar

from mindspore import ops

from src.heads.registry import MARGINS
from src.heads.margin import Margin


def arcface_logits(cos, one_hot, s, m, easy_margin):
    """Additive angular margin: logit_y = s cos(theta_y + m), logit_j = s cos(theta_j) for j != y.

    cos(theta + m) = cos(theta) cos(m) - sin(theta) sin(m), sin(theta) = sqrt(1 - cos^2(theta)).
    Where theta + m > pi (cos(theta) < cos(pi - m)) the target logit falls back to cos(theta) - m sin(m), which
    keeps it decreasing in theta; with ``easy_margin`` the margin applies only where cos(theta) > 0.
    """
    sin = ops.sqrt(ops.clamp(1.0 - cos * cos, 1e-12, 1.0))
    phi = cos * math.cos(m) - sin * math.sin(m)
    if easy_margin:
        phi = ops.where(cos > 0, phi, cos)
    else:
        phi = ops.where(cos > math.cos(math.pi - m), phi, cos - math.sin(math.pi - m) * m)
    return s * (one_hot * phi + (1.0 - one_hot) * cos)


@MARGINS.register("arcface")
class ArcFace(Margin):
    PARAMS: ClassVar[dict] = {"s": {"type": "float", "default": 64.0, "min": 0.0, "help": "logit scale s"},
              "m": {"type": "float", "default": 0.5, "help": "additive angular margin m (radians)"},
              "easy_margin": {"type": "bool", "default": False,
                              "help": "apply the margin only where cos(theta) > 0"}}

    def construct(self, cos, one_hot, norms):
        return arcface_logits(cos, one_hot, self.s, self.m, self.easy_margin)
