"""MobileFaceNet (Chen et al., "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face Verification on
Mobile Devices", CCBR 2018, Table 1).

A stride-2 3x3 convolution and a depthwise 3x3 convolution, 15 inverted-residual bottlenecks
(MobileNetV2 style: 1x1 expansion, depthwise 3x3, linear 1x1 projection; the input is added back when the
stride is 1 and the channels match), a 1x1 convolution to 512 channels, a global depthwise convolution
(``linear7``) whose kernel is the whole last feature map (7x6 at 112x96, 7x7 at 112x112), and a linear 1x1
convolution + BatchNorm to the embedding. All convolutions are bias-free and followed by BatchNorm
(eps 1e-5); PReLU everywhere except after the projections, ``linear7`` and ``linear1``. The output is the
raw (unnormalised) embedding.

Cell names follow the common PyTorch implementation (``conv1``, ``dw_conv1``, ``blocks.i.conv.j``,
``conv2``, ``linear7``, ``linear1``, each ConvBlock holding ``conv``/``bn``/``prelu``), so converting a
PyTorch state_dict only renames parameter suffixes (see ``tools/convert_torch.py``). Initialisation:
He-normal convolutions with fan-out (std sqrt(2 / (k*k*out_channels))), BatchNorm gamma 1 / beta 0,
PReLU slopes 0.25. The depthwise convolutions (``dw_conv1``, each bottleneck's ``conv.3``, ``linear7``) are
``nn.Conv2d(group=C)``.
"""

from mindspore import nn
from mindspore.common.initializer import HeNormal

from src.network.layers import batch_norm, conv2d, feature_map_size
from src.network.registry import BACKBONES

# (expansion t, output channels c, repeats n, stride of the first repeat s), as in the paper's Table 1.
BOTTLENECK_SETTINGS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


def he_normal():
    return HeNormal(mode="fan_out", nonlinearity="relu")


def conv(in_channels, out_channels, kernel_size, stride=1, padding=0, group=1):
    """Bias-free convolution with He-normal (fan-out) initialisation; depthwise with ``group`` = channels."""
    return conv2d(
        in_channels, out_channels, kernel_size, stride, padding, group, has_bias=False, weight_init=he_normal()
    )


class ConvBlock(nn.Cell):
    """conv -> BN (-> PReLU unless ``linear``); the convolution depthwise when ``depthwise`` (in = out channels)."""

    FOLDABLE = (("conv", "bn"),)  # src/network/fold_bn.py

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, depthwise=False, linear=False):
        super().__init__()
        group = in_channels if depthwise else 1
        self.conv = conv(in_channels, out_channels, kernel_size, stride, padding, group)
        self.bn = batch_norm(out_channels)
        self.prelu = None if linear else nn.PReLU(out_channels)

    def construct(self, x):
        x = self.bn(self.conv(x))
        if self.prelu is not None:
            x = self.prelu(x)
        return x


class Bottleneck(nn.Cell):
    """Inverted residual: 1x1 expand (x t), BN, PReLU, depthwise 3x3 (stride), BN, PReLU, 1x1 project, BN."""

    def __init__(self, in_channels, out_channels, stride, expansion):
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == out_channels
        self.conv = nn.SequentialCell(
            [
                conv(in_channels, hidden, 1),
                batch_norm(hidden),
                nn.PReLU(hidden),
                conv(hidden, hidden, 3, stride, 1, group=hidden),
                batch_norm(hidden),
                nn.PReLU(hidden),
                conv(hidden, out_channels, 1),
                batch_norm(out_channels),
            ]
        )

    def construct(self, x):
        if self.residual:
            return x + self.conv(x)
        return self.conv(x)


@BACKBONES.register("mobilefacenet")
class MobileFaceNet(nn.Cell):
    """MobileFaceNet: NCHW images (3 x image_size) -> raw ``embedding_size`` embeddings (128-d by default)."""

    def __init__(self, embedding_size=128, image_size=(112, 96)):
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, stride=2, padding=1)
        self.dw_conv1 = ConvBlock(64, 64, 3, stride=1, padding=1, depthwise=True)
        blocks = []
        in_channels = 64
        for expansion, out_channels, repeats, stride in BOTTLENECK_SETTINGS:
            for i in range(repeats):
                blocks.append(Bottleneck(in_channels, out_channels, stride if i == 0 else 1, expansion))
                in_channels = out_channels
        self.blocks = nn.SequentialCell(blocks)
        self.conv2 = ConvBlock(in_channels, 512, 1)
        # conv1 and the three stride-2 bottlenecks halve the size (rounding up): 112x96 -> 7x6.
        self.linear7 = ConvBlock(512, 512, feature_map_size(image_size), depthwise=True, linear=True)
        self.linear1 = ConvBlock(512, embedding_size, 1, linear=True)
        self.flatten = nn.Flatten()

    def construct(self, x):
        x = self.dw_conv1(self.conv1(x))
        x = self.conv2(self.blocks(x))
        return self.flatten(self.linear1(self.linear7(x)))
