"""NormFace (Wang et al., "NormFace: L2 Hypersphere Embedding for Face Verification", ACM MM 2017)."""
from typing import ClassVar

from src.heads.registry import MARGINS
from src.heads.margin import Margin


def normface_logits(cos, s):
    """Normalised softmax: logit_j = s cos(theta_j) for every class, no margin."""
    return s * cos


@MARGINS.register("normface")
class NormFace(Margin):
    PARAMS: ClassVar[dict] = {"s": {"type": "float", "default": 30.0, "min": 0.0, "help": "logit scale s"}}

    def construct(self, cos, one_hot, norms):
        return normface_logits(cos, self.s)
