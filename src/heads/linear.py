"""Plain softmax baseline: logits = W x + b."""
from mindspore import nn
from mindspore.common.initializer import XavierUniform

from src.heads import HEADS


@HEADS.register("linear")
class LinearHead(nn.Cell):
    """logits_j = W_j^T x + b_j (no normalisation, no margin); accuracy is read from the same logits."""

    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.fc = nn.Dense(embedding_size, num_classes, weight_init=XavierUniform(), bias_init="zeros")

    def construct(self, x, label):
        logits = self.fc(x)
        return logits, logits
