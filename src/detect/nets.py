"""MTCNN's three networks (Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks", IEEE SPL 2016) as MindSpore cells, in the layout of the weights facenet-pytorch ships.

Inputs are RGB, NCHW, (x - 127.5) / 128. Max pooling rounds its output size up (ceil mode), as the original
Caffe networks did. The dense layers take the NCHW flattening of the convolution output; the conversion
(``src/detect/weights.py``) permutes the published weights, which expect a (W, H, C) flattening, to match.

``PNet``  fully convolutional, any input size: (face-box regression (N, 4, h, w), face probability (N, h, w)).
``RNet``  24x24 crops: (box regression (N, 4), face probability (N,)).
``ONet``  48x48 crops: (box regression (N, 4), 5 landmarks (N, 10) as x1..x5 then y1..y5 in the crop's unit
          square, face probability (N,)).
"""

from mindspore import nn, ops


def _conv(in_channels, out_channels, kernel_size):
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, pad_mode="valid", has_bias=True, weight_init="zeros", bias_init="zeros"
    )


class CeilMaxPool(nn.Cell):
    """Max pooling, stride 2, with the output size rounded up (Caffe's / PyTorch's ceil mode).

    ceil((n - k) / 2) = floor((n - k + 1) / 2): one more row and column at the bottom and right, then ordinary
    (floor) pooling, give the same windows for every input size. The extra row and column repeat the last ones:
    any window that reaches them also holds the row or column they copy (k >= 2), so the maxima are those of
    ceil mode. Written this way because MindSpore's ONNX exporter takes neither ``nn.MaxPool2d(ceil_mode=True)``
    nor a constant pad.
    """

    def __init__(self, kernel_size):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size, 2, pad_mode="valid")

    def construct(self, x):
        x = ops.concat((x, x[:, :, -1:, :]), axis=2)
        return self.pool(ops.concat((x, x[:, :, :, -1:]), axis=3))


def _face_probability(logits):
    """Softmax over the two classes of axis 1, the 'face' one (index 1) with that axis removed. A split, not
    ``[:, 1]``: MindSpore's ONNX export of a slice with a dynamic shape is broken."""
    return ops.squeeze(ops.split(ops.softmax(logits, axis=1), 1, axis=1)[1], 1)


def _pool(kernel_size):
    return CeilMaxPool(kernel_size)


def _dense(in_channels, out_channels):
    return nn.Dense(in_channels, out_channels, weight_init="zeros", bias_init="zeros")


class PNet(nn.Cell):
    """Proposal network: 12x12 windows with stride 2 over the whole image."""

    def __init__(self):
        super().__init__()
        # for a 2x2 window, "same" pooling (output ceil(n / 2), the odd row / column padded at the end) is ceil mode,
        # and unlike CeilMaxPool it exports to ONNX with a dynamic height and width
        self.conv1, self.prelu1 = _conv(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, pad_mode="same")
        self.conv2, self.prelu2 = _conv(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = _conv(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = _conv(32, 2, 1), _conv(32, 4, 1)

    def construct(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), _face_probability(self.conv4_1(x))


class RNet(nn.Cell):
    """Refinement network on 24x24 candidate crops."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1, self.pool1 = _conv(3, 28, 3), nn.PReLU(28), _pool(3)
        self.conv2, self.prelu2, self.pool2 = _conv(28, 48, 3), nn.PReLU(48), _pool(3)
        self.conv3, self.prelu3 = _conv(48, 64, 2), nn.PReLU(64)
        self.flatten = nn.Flatten()
        self.dense4, self.prelu4 = _dense(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = _dense(128, 2), _dense(128, 4)

    def construct(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(self.flatten(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), _face_probability(self.dense5_1(x))


class ONet(nn.Cell):
    """Output network on 48x48 crops: final score, box and the five landmarks."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1, self.pool1 = _conv(3, 32, 3), nn.PReLU(32), _pool(3)
        self.conv2, self.prelu2, self.pool2 = _conv(32, 64, 3), nn.PReLU(64), _pool(3)
        self.conv3, self.prelu3, self.pool3 = _conv(64, 64, 3), nn.PReLU(64), _pool(2)
        self.conv4, self.prelu4 = _conv(64, 128, 2), nn.PReLU(128)
        self.flatten = nn.Flatten()
        self.dense5, self.prelu5 = _dense(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = _dense(256, 2), _dense(256, 4), _dense(256, 10)

    def construct(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(self.flatten(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), _face_probability(self.dense6_1(x))


class MTCNNNets(nn.Cell):
    """The three networks under one cell, so one checkpoint holds them (parameter names ``pnet.conv1.weight``...)."""

    def __init__(self):
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
