"""NormFace (Wang et al., "NormFace: L2 Hypersphere Embedding for Face Verification", ACM MM 2017)."""
from src.heads import HEADS
from src.heads.cosine import CosineHead


@HEADS.register("normface")
class NormFaceHead(CosineHead):
    """Normalised softmax: logits_j = s cos(theta_j), no margin. Default s = 30."""

    def __init__(self, embedding_size, num_classes, s=30.0):
        super().__init__(embedding_size, num_classes)
        self.s = s

    def construct(self, x, label):
        cos = self.cosine(x)
        return self.s * cos, cos
