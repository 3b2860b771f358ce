"""SphereFace residual networks (Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition",
CVPR 2017, Table 2).

Four stages of 64/128/256/512 channels. Each stage starts with a stride-2 3x3 convolution + PReLU and is
followed by ``units[i]`` residual units of two 3x3 convolutions + PReLU (identity shortcut). A fully
connected layer maps the last feature map to the embedding, so its input size follows from the input size
(112x96 -> 512x7x6, 112x112 -> 512x7x7). Initialisation follows the released Caffe prototxt: Xavier for
the stride-2 convolutions (with bias) and the embedding layer, Gaussian(0, 0.01) for the residual
convolutions (no bias), PReLU slopes 0.25.

``embedding_bn=True`` appends a BatchNorm1d to the embedding (scale fixed at 1, learnt shift), the ``features``
layer of iResNet and MobileFaceNet that the SphereFace networks lack. It centres every embedding dimension over
the batch, so the embeddings of different people cannot drift into one narrow cone and their norm cannot grow
without bound: what lets the s = 64 margin heads train on the LFW View 1 recipe (docs/results.md).
"""

from mindspore import nn
from mindspore.common.initializer import Normal, XavierUniform

from src.network.layers import conv2d, embedding_batch_norm, feature_map_size
from src.network.registry import BACKBONES

STAGE_CHANNELS = (64, 128, 256, 512)
DEPTHS = {
    "sphere4": (0, 0, 0, 0),
    "sphere10": (0, 1, 2, 0),
    "sphere20a": (1, 2, 4, 1),
    "sphere36": (2, 4, 8, 2),
    "sphere64": (3, 8, 16, 3),
}


def conv3x3(in_channels, out_channels, stride, residual):
    """3x3 convolution, padding 1, with the Caffe release's initialisation for its role."""
    if residual:
        init = {"has_bias": False, "weight_init": Normal(0.01)}
    else:
        init = {"has_bias": True, "weight_init": XavierUniform(), "bias_init": "zeros"}
    return conv2d(in_channels, out_channels, 3, stride, 1, **init)


class ResidualUnit(nn.Cell):
    """x + PReLU(conv(PReLU(conv(x))))."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.SequentialCell(
            [
                conv3x3(channels, channels, 1, residual=True),
                nn.PReLU(channels),
                conv3x3(channels, channels, 1, residual=True),
                nn.PReLU(channels),
            ]
        )

    def construct(self, x):
        return x + self.body(x)


class SphereNet(nn.Cell):
    """SphereFace-N: four stages, then Dense -> embedding (-> BatchNorm1d with ``embedding_bn``)."""

    FOLDABLE = (("fc5", "embedding_bn"),)  # src/network/fold_bn.py (when there is one)

    def __init__(
        self,
        units,
        embedding_size=512,
        image_size=(112, 96),
        width=1.0,
        in_channels=3,
        embedding_bn=False,
    ):
        super().__init__()
        channels = [max(1, int(round(c * width))) for c in STAGE_CHANNELS]
        layers = []
        for stage_units, out_channels in zip(units, channels):
            layers += [conv3x3(in_channels, out_channels, 2, residual=False), nn.PReLU(out_channels)]
            layers += [ResidualUnit(out_channels) for _ in range(stage_units)]
            in_channels = out_channels
        self.features = nn.SequentialCell(layers)
        self.flatten = nn.Flatten()
        height, width_out = feature_map_size(image_size)
        self.fc5 = nn.Dense(
            channels[-1] * height * width_out, embedding_size, weight_init=XavierUniform(), bias_init="zeros"
        )
        self.embedding_bn = embedding_batch_norm(embedding_size) if embedding_bn else None

    def construct(self, x):
        x = self.fc5(self.flatten(self.features(x)))
        if self.embedding_bn is not None:
            x = self.embedding_bn(x)
        return x


def _register(name, units):
    @BACKBONES.register(name)
    def factory(embedding_size=512, image_size=(112, 96), width=1.0, embedding_bn=False):
        return SphereNet(
            units, embedding_size=embedding_size, image_size=tuple(image_size), width=width, embedding_bn=embedding_bn
        )

    factory.__doc__ = f"{name}: residual units per stage {units}."
    return factory


for _name, _units in DEPTHS.items():
    _register(_name, _units)
