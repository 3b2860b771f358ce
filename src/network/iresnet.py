"""Improved residual networks (IR) of ArcFace / insightface (Deng et al., "ArcFace: Additive Angular Margin
Loss for Deep Face Recognition", CVPR 2019: the BN-Conv-BN-PReLU-Conv-BN residual unit), in the layout of
insightface's arcface_torch ``iresnet``.

Input 3x3 convolution (64, stride 1) + BN + PReLU; four stages of 64/128/256/512 channels made of
IBasicBlocks: BN, conv3x3, BN, PReLU, conv3x3 (carrying the stage's stride 2), BN, plus the shortcut, which
is a 1x1 stride-2 convolution + BN for the first block of every stage. Then BN, dropout (identity at
inference), flatten, a fully connected layer to the embedding (its input size follows from the image size:
512x7x7 at 112x112, 512x7x6 at 112x96) and a BatchNorm1d (``features``) whose scale is fixed at 1, as in
insightface. BatchNorm eps 1e-5. Initialisation as insightface: convolutions Normal(0, 0.1), BatchNorm
gamma 1 / beta 0, PReLU slopes 0.25, the fully connected layer PyTorch's Linear default.

Cell names follow insightface (``conv1``, ``bn1``, ``prelu``, ``layerK.i.{bn1,conv1,bn2,prelu,conv2,bn3}``,
``layerK.0.downsample.{0,1}``, ``bn2``, ``fc``, ``features``), so converting a PyTorch state_dict only renames
parameter suffixes (see ``tools/convert_torch.py``).
"""

import math

from mindspore import nn
from mindspore.common.initializer import HeUniform, Normal, Uniform

from src.network.layers import batch_norm, conv2d, embedding_batch_norm, feature_map_size
from src.network.registry import BACKBONES

STAGE_CHANNELS = (64, 128, 256, 512)
DEPTHS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}


def conv(in_channels, out_channels, kernel_size, stride=1):
    """Bias-free convolution ('same' padding for 3x3), Normal(0, 0.1) initialisation."""
    return conv2d(
        in_channels, out_channels, kernel_size, stride, kernel_size // 2, has_bias=False, weight_init=Normal(0.1)
    )


class IBasicBlock(nn.Cell):
    """BN, conv3x3, BN, PReLU, conv3x3 (stride), BN, + shortcut (identity, or 1x1 conv + BN)."""

    FOLDABLE = (("conv1", "bn2"), ("conv2", "bn3"))  # bn1 precedes a padded conv: not foldable

    def __init__(self, in_channels, channels, stride):
        super().__init__()
        self.bn1 = batch_norm(in_channels)
        self.conv1 = conv(in_channels, channels, 3)
        self.bn2 = batch_norm(channels)
        self.prelu = nn.PReLU(channels)
        self.conv2 = conv(channels, channels, 3, stride)
        self.bn3 = batch_norm(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.SequentialCell([conv(in_channels, channels, 1, stride), batch_norm(channels)])

    def construct(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        if self.downsample is not None:
            return out + self.downsample(x)
        return out + x


class IResNet(nn.Cell):
    """iResNet: NCHW images (3 x image_size) -> ``embedding_size`` embeddings (after BatchNorm1d)."""

    FOLDABLE = (("conv1", "bn1"), ("fc", "features"))  # src/network/fold_bn.py

    def __init__(
        self,
        layers,
        embedding_size=512,
        image_size=(112, 112),
        dropout=0.0,
    ):
        super().__init__()
        self.conv1 = conv(3, 64, 3)
        self.bn1 = batch_norm(64)
        self.prelu = nn.PReLU(64)
        in_channels = 64
        for index, (blocks, channels) in enumerate(zip(layers, STAGE_CHANNELS), start=1):
            stage = [
                IBasicBlock(in_channels if i == 0 else channels, channels, 2 if i == 0 else 1) for i in range(blocks)
            ]
            setattr(self, f"layer{index}", nn.SequentialCell(stage))
            in_channels = channels
        self.bn2 = batch_norm(in_channels)
        self.dropout = nn.Dropout(p=dropout)
        self.flatten = nn.Flatten()
        height, width = feature_map_size(image_size)
        fan_in = in_channels * height * width
        self.fc = nn.Dense(
            fan_in,
            embedding_size,
            weight_init=HeUniform(negative_slope=math.sqrt(5)),
            bias_init=Uniform(1 / math.sqrt(fan_in)),
        )
        self.features = embedding_batch_norm(embedding_size)

    def construct(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.flatten(self.bn2(x)))
        return self.features(self.fc(x))


def _register(name, layers):
    @BACKBONES.register(name)
    def factory(embedding_size=512, image_size=(112, 112)):
        return IResNet(layers, embedding_size=embedding_size, image_size=tuple(image_size))

    factory.__doc__ = f"{name}: IBasicBlocks per stage {layers}."
    return factory


for _name, _layers in DEPTHS.items():
    _register(_name, _layers)
