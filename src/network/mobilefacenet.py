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
``nn.Conv2d(group=C)`` or the CPU kernel of src/network/depthwise.py, chosen by ``depthwise_kernel``, and the dense
ones (``conv1``, the 1x1 convolutions) ``nn.Conv2d`` or the oneDNN kernel of src/network/conv.py, chosen by
``conv_kernel``, and the BatchNorms ``nn.BatchNorm2d`` or the CPU kernel of src/network/batchnorm.py, chosen by
``batchnorm_kernel``, with the same parameters either way.
"""

from mindspore import nn
from mindspore.common.initializer import HeNormal

from src.network.conv import conv2d
from src.network.depthwise import depthwise_conv2d
from src.network.layers import batch_norm, feature_map_size
from src.network.prelu import prelu_class
from src.network.registry import BACKBONES

# (expansion t, output channels c, repeats n, stride of the first repeat s), as in the paper's Table 1.
BOTTLENECK_SETTINGS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


def he_normal():
    return HeNormal(mode="fan_out", nonlinearity="relu")


def conv(conv_kernel, in_channels, out_channels, kernel_size, stride=1, padding=0):
    """Bias-free dense convolution with He-normal (fan-out) initialisation, through ``conv_kernel`` ("native":
    nn.Conv2d, "cpu_aot": src/network/conv.py)."""
    return conv2d(
        conv_kernel, in_channels, out_channels, kernel_size, stride, padding, has_bias=False, weight_init=he_normal()
    )


class ConvBlock(nn.Cell):
    """conv (of the ``conv_kernel``) -> BN (of the ``batchnorm_kernel``) (-> PReLU unless ``linear``); a depthwise
    convolution of the ``depthwise`` kernel ("native" or "cpu_aot"; in_channels = out_channels) when given."""

    FOLDABLE = (("conv", "bn"),)  # src/network/fold_bn.py

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        prelu,
        stride=1,
        padding=0,
        depthwise=None,
        linear=False,
        conv_kernel="native",
        batchnorm_kernel="native",
    ):
        super().__init__()
        if depthwise is None:
            self.conv = conv(conv_kernel, in_channels, out_channels, kernel_size, stride, padding)
        else:
            self.conv = depthwise_conv2d(depthwise, in_channels, kernel_size, stride, padding, he_normal())
        self.bn = batch_norm(out_channels, batchnorm_kernel)
        self.prelu = None if linear else prelu(out_channels)

    def construct(self, x):
        x = self.bn(self.conv(x))
        if self.prelu is not None:
            x = self.prelu(x)
        return x


class Bottleneck(nn.Cell):
    """Inverted residual: 1x1 expand (x t), BN, PReLU, depthwise 3x3 (stride; the ``depthwise`` kernel), BN,
    PReLU, 1x1 project, BN; the 1x1 convolutions through ``conv_kernel``, the BNs through ``batchnorm_kernel``."""

    def __init__(self, in_channels, out_channels, stride, expansion, prelu, depthwise, conv_kernel, batchnorm_kernel):
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == out_channels
        self.conv = nn.SequentialCell(
            [
                conv(conv_kernel, in_channels, hidden, 1),
                batch_norm(hidden, batchnorm_kernel),
                prelu(hidden),
                depthwise_conv2d(depthwise, hidden, 3, stride, 1, he_normal()),
                batch_norm(hidden, batchnorm_kernel),
                prelu(hidden),
                conv(conv_kernel, hidden, out_channels, 1),
                batch_norm(out_channels, batchnorm_kernel),
            ]
        )

    def construct(self, x):
        if self.residual:
            return x + self.conv(x)
        return self.conv(x)


@BACKBONES.register("mobilefacenet")
class MobileFaceNet(nn.Cell):
    """MobileFaceNet: NCHW images (3 x image_size) -> raw ``embedding_size`` embeddings (128-d by default)."""

    def __init__(
        self,
        embedding_size=128,
        image_size=(112, 96),
        prelu_kernel="native",
        depthwise_kernel="native",
        conv_kernel="native",
        batchnorm_kernel="native",
    ):
        super().__init__()
        prelu = prelu_class(prelu_kernel)
        bn = {"batchnorm_kernel": batchnorm_kernel}
        self.conv1 = ConvBlock(3, 64, 3, prelu, stride=2, padding=1, conv_kernel=conv_kernel, **bn)
        self.dw_conv1 = ConvBlock(64, 64, 3, prelu, stride=1, padding=1, depthwise=depthwise_kernel, **bn)
        blocks = []
        in_channels = 64
        for expansion, out_channels, repeats, stride in BOTTLENECK_SETTINGS:
            for i in range(repeats):
                blocks.append(
                    Bottleneck(
                        in_channels,
                        out_channels,
                        stride if i == 0 else 1,
                        expansion,
                        prelu,
                        depthwise_kernel,
                        conv_kernel,
                        batchnorm_kernel,
                    )
                )
                in_channels = out_channels
        self.blocks = nn.SequentialCell(blocks)
        self.conv2 = ConvBlock(in_channels, 512, 1, prelu, conv_kernel=conv_kernel, **bn)
        # conv1 and the three stride-2 bottlenecks halve the size (rounding up): 112x96 -> 7x6.
        size = feature_map_size(image_size)
        self.linear7 = ConvBlock(512, 512, size, prelu, depthwise=depthwise_kernel, linear=True, **bn)
        self.linear1 = ConvBlock(512, embedding_size, 1, prelu, linear=True, conv_kernel=conv_kernel, **bn)
        self.flatten = nn.Flatten()

    def construct(self, x):
        x = self.dw_conv1(self.conv1(x))
        x = self.conv2(self.blocks(x))
        return self.flatten(self.linear1(self.linear7(x)))
