"""Backbone + head + loss as one Cell: (image, label) -> (loss, accuracy)."""
import mindspore as ms
from mindspore import nn


class FaceTrainNetwork(nn.Cell):
    """loss = CE(head(backbone(x), y), y) with optional label smoothing (only here: the head's margin always
    uses the hard label); accuracy = mean(argmax_j cos(theta_j) == y), read from cos(theta), not the margin
    logits. The embedding is cast to float32, so under mixed precision the head and the loss stay float32."""

    def __init__(self, backbone, head, label_smoothing=0.0):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def construct(self, image, label):
        logits, cos = self.head(self.backbone(image).astype(ms.float32), label)
        loss = self.loss(logits, label)
        accuracy = (cos.argmax(axis=1) == label).astype(ms.float32).mean()
        return loss, accuracy
