"""Plain softmax baseline: logits = W x + b."""
from src.heads.registry import MARGINS
from src.heads.margin import Margin


def linear_logits(scores):
    """logits_j = W_j^T x + b_j: the centres' unnormalised scores, no margin."""
    return scores


@MARGINS.register("linear")
class Linear(Margin):
    """The softmax baseline: its centres are ``LinearCentres`` (W x + b, no normalisation); accuracy is read from
    the same scores. Replicated centres only."""

    normalised_centres = False

    def construct(self, cos, one_hot, norms):
        return linear_logits(cos)
