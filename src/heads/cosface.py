"""CosFace / AM-Softmax (Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition", CVPR 2018)."""
from typing import ClassVar

from src.heads.registry import MARGINS
from src.heads.margin import Margin


def cosface_logits(cos, one_hot, s, m):
    """Large margin cosine: logit_y = s (cos(theta_y) - m), logit_j = s cos(theta_j) for j != y."""
    return s * (cos - m * one_hot)


@MARGINS.register("cosface")
class CosFace(Margin):
    PARAMS: ClassVar[dict] = {"s": {"type": "float", "default": 64.0, "min": 0.0, "help": "logit scale s"},
              "m": {"type": "float", "default": 0.35, "help": "additive cosine margin m"}}

    def construct(self, cos, one_hot, norms):
        return cosface_logits(cos, one_hot, self.s, self.m)
