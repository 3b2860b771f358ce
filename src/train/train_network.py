"""Backbone + head as one Cell: (image, label) -> (loss, accuracy)."""

import mindspore as ms
from mindspore import nn


class FaceTrainNetwork(nn.Cell):
    """The head (src/heads) gives the loss (its margin on the hard label, label smoothing in its cross entropy)
    and the training accuracy (read from cos(theta), not the margin logits). The embedding is cast to float32,
    so under mixed precision the head and the loss stay float32."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def construct(self, image, label):
        return self.head(self.backbone(image).astype(ms.float32), label)
