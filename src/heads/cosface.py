"""CosFace / AM-Softmax (Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition", CVPR 2018)."""
from src.heads import HEADS
from src.heads.cosine import CosineHead


@HEADS.register("cosface")
class CosFaceHead(CosineHead):
    """Large margin cosine: logit_y = s (cos(theta_y) - m), logit_j = s cos(theta_j) for j != y.
    Defaults s = 64, m = 0.35."""

    def __init__(self, embedding_size, num_classes, s=64.0, m=0.35):
        super().__init__(embedding_size, num_classes)
        self.s, self.m = s, m

    def construct(self, x, label):
        cos = self.cosine(x)
        logits = self.s * (cos - self.m * self.one_hot(label))
        return logits, cos
