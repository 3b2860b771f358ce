"""PyTorch twins of the project's backbones and heads, for the side-by-side benchmarks only.

PyTorch is an optional benchmark extra (``pip install torch==2.13.0``); nothing in ``src/`` imports this file.
Each twin computes what its MindSpore original in ``src/network`` / ``src/heads`` computes, with parameter
names chosen so that one state_dict fills both (``mindspore_parameters`` maps it): sphere networks by the
``.weight`` -> ``.w`` rename of the PReLU slopes, MobileFaceNet and iResNet by ``tools/convert_torch.py``
(their twins use the common PyTorch / insightface layouts that tool reads).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from src.network.iresnet import DEPTHS as IRESNET_DEPTHS
from src.network.layers import feature_map_size
from src.network.mobilefacenet import BOTTLENECK_SETTINGS
from src.network.sphere import DEPTHS as SPHERE_DEPTHS
from src.network.sphere import STAGE_CHANNELS


# --- backbones ---------------------------------------------------------------------------------------------
class SphereResidual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.PReLU(channels, 0.25),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.PReLU(channels, 0.25),
        )

    def forward(self, x):
        return x + self.body(x)


class SphereNet(nn.Module):
    """Twin of ``src.network.sphere.SphereNet`` (same ``features.i`` indices)."""

    def __init__(self, units, embedding_size=512, image_size=(112, 96)):
        super().__init__()
        layers, in_channels = [], 3
        for stage_units, channels in zip(units, STAGE_CHANNELS):
            layers += [nn.Conv2d(in_channels, channels, 3, 2, 1), nn.PReLU(channels, 0.25)]
            layers += [SphereResidual(channels) for _ in range(stage_units)]
            in_channels = channels
        self.features = nn.Sequential(*layers)
        height, width = feature_map_size(image_size)
        self.fc5 = nn.Linear(in_channels * height * width, embedding_size)

    def forward(self, x):
        return self.fc5(torch.flatten(self.features(x), 1))


class ConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels, kernel, stride=1, padding=0, depthwise=False, linear=False):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel, stride, padding, groups=in_channels if depthwise else 1, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.prelu = None if linear else nn.PReLU(out_channels, 0.25)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class Bottleneck(nn.Module):
    def __init__(self, in_channels, out_channels, stride, expansion):
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden, 0.25),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden, 0.25),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileFaceNet(nn.Module):
    """Twin of ``src.network.mobilefacenet.MobileFaceNet`` (the common PyTorch layout)."""

    def __init__(self, embedding_size=128, image_size=(112, 96)):
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.dw_conv1 = ConvBlock(64, 64, 3, 1, 1, depthwise=True)
        blocks, in_channels = [], 64
        for expansion, out_channels, repeats, stride in BOTTLENECK_SETTINGS:
            for i in range(repeats):
                blocks.append(Bottleneck(in_channels, out_channels, stride if i == 0 else 1, expansion))
                in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = ConvBlock(in_channels, 512, 1)
        self.linear7 = ConvBlock(512, 512, feature_map_size(image_size), depthwise=True, linear=True)
        self.linear1 = ConvBlock(512, embedding_size, 1, linear=True)

    def forward(self, x):
        x = self.conv2(self.blocks(self.dw_conv1(self.conv1(x))))
        return torch.flatten(self.linear1(self.linear7(x)), 1)


class IBasicBlock(nn.Module):
    def __init__(self, in_channels, channels, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU(channels, 0.25)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """Twin of ``src.network.iresnet.IResNet`` (insightface's arcface_torch layout)."""

    def __init__(self, layers, embedding_size=512, image_size=(112, 112)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU(64, 0.25)
        in_channels = 64
        for index, (blocks, channels) in enumerate(zip(layers, STAGE_CHANNELS), start=1):
            setattr(
                self,
                f"layer{index}",
                nn.Sequential(
                    *[
                        IBasicBlock(in_channels if i == 0 else channels, channels, 2 if i == 0 else 1)
                        for i in range(blocks)
                    ]
                ),
            )
            in_channels = channels
        self.bn2 = nn.BatchNorm2d(in_channels)
        height, width = feature_map_size(image_size)
        self.fc = nn.Linear(in_channels * height * width, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size)
        self.features.weight.requires_grad = False

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.features(self.fc(torch.flatten(self.bn2(x), 1)))


def build_backbone(name, embedding_size, image_size):
    if name in SPHERE_DEPTHS:
        return SphereNet(SPHERE_DEPTHS[name], embedding_size, image_size)
    if name == "mobilefacenet":
        return MobileFaceNet(embedding_size, image_size)
    if name in IRESNET_DEPTHS:
        return IResNet(IRESNET_DEPTHS[name], embedding_size, image_size)
    raise ValueError(f"no PyTorch twin for backbone '{name}'")


# --- heads: the formulas are in the docstrings of src/heads --------------------------------------------------
def l2_normalize(x, eps=1e-12):
    return x * torch.rsqrt((x * x).sum(dim=1, keepdim=True) + eps)


def feature_norm(x, eps=1e-12):
    return torch.sqrt((x * x).sum(dim=1, keepdim=True) + eps)


class LinearHead(nn.Module):
    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.fc = nn.Linear(embedding_size, num_classes)

    def forward(self, x, label):
        logits = self.fc(x)
        return logits, logits


class CosineHead(nn.Module):
    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, x):
        return (l2_normalize(x) @ l2_normalize(self.weight).T).clamp(-1.0, 1.0)

    def one_hot(self, label):
        return F.one_hot(label, self.num_classes).float()


class NormFaceHead(CosineHead):
    def __init__(self, embedding_size, num_classes, s=30.0):
        super().__init__(embedding_size, num_classes)
        self.s = s

    def forward(self, x, label):
        cos = self.cosine(x)
        return self.s * cos, cos


class CosFaceHead(CosineHead):
    def __init__(self, embedding_size, num_classes, s=64.0, m=0.35):
        super().__init__(embedding_size, num_classes)
        self.s, self.m = s, m

    def forward(self, x, label):
        cos = self.cosine(x)
        return self.s * (cos - self.m * self.one_hot(label)), cos


class ArcFaceHead(CosineHead):
    def __init__(self, embedding_size, num_classes, s=64.0, m=0.5):
        super().__init__(embedding_size, num_classes)
        self.s, self.cos_m, self.sin_m = s, math.cos(m), math.sin(m)
        self.threshold, self.fallback = math.cos(math.pi - m), math.sin(math.pi - m) * m

    def forward(self, x, label):
        cos = self.cosine(x)
        sin = torch.sqrt((1.0 - cos * cos).clamp(1e-12, 1.0))
        phi = torch.where(cos > self.threshold, cos * self.cos_m - sin * self.sin_m, cos - self.fallback)
        one_hot = self.one_hot(label)
        return self.s * (one_hot * phi + (1.0 - one_hot) * cos), cos


class ASoftmaxHead(CosineHead):
    """m = 4, lambda = max(5, 1000 (1 + 0.12 it)^-1)."""

    def __init__(self, embedding_size, num_classes, base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0):
        super().__init__(embedding_size, num_classes)
        self.base, self.gamma, self.power, self.lambda_min = base, gamma, power, lambda_min
        self.boundaries = [math.cos(j * math.pi / 4) for j in range(1, 4)]
        self.register_buffer("iteration", torch.zeros((), dtype=torch.int32))

    def forward(self, x, label):
        cos = self.cosine(x)
        lam = (self.base * (1.0 + self.gamma * self.iteration.float()) ** (-self.power)).clamp(min=self.lambda_min)
        if self.training:
            self.iteration += 1
        c = cos.detach()
        k = sum((c <= b).float() for b in self.boundaries)
        sign = 1.0 - 2.0 * (k - 2.0 * torch.floor(k / 2.0))
        cos_m_theta = (((8.0 * cos + 0.0) * cos - 8.0) * cos + 0.0) * cos + 1.0
        target = (lam * cos + sign * cos_m_theta - 2.0 * k) / (1.0 + lam)
        one_hot = self.one_hot(label)
        return feature_norm(x) * (one_hot * target + (1.0 - one_hot) * cos), cos


class AdaFaceHead(CosineHead):
    EPS = 1e-3

    def __init__(self, embedding_size, num_classes, s=64.0, m=0.4, h=0.333, t_alpha=0.01):
        super().__init__(embedding_size, num_classes)
        self.s, self.m, self.h, self.t_alpha = s, m, h, t_alpha
        self.register_buffer("batch_mean", torch.tensor(20.0))
        self.register_buffer("batch_std", torch.tensor(100.0))

    def forward(self, x, label):
        cos = self.cosine(x)
        norms = feature_norm(x).clamp(0.001, 100.0).detach()
        if self.training:
            self.batch_mean.mul_(1.0 - self.t_alpha).add_(norms.mean() * self.t_alpha)
            self.batch_std.mul_(1.0 - self.t_alpha).add_(norms.std() * self.t_alpha)
        scaler = (self.h * (norms - self.batch_mean) / (self.batch_std + self.EPS)).clamp(-1.0, 1.0)
        one_hot = self.one_hot(label)
        theta = torch.acos(cos.clamp(-1.0 + self.EPS, 1.0 - self.EPS))
        theta_m = (theta - one_hot * self.m * scaler).clamp(self.EPS, math.pi - self.EPS)
        return self.s * (torch.cos(theta_m) - one_hot * (self.m + self.m * scaler)), cos


HEADS = {
    "linear": LinearHead,
    "normface": NormFaceHead,
    "cosface": CosFaceHead,
    "arcface": ArcFaceHead,
    "asoftmax": ASoftmaxHead,
    "adaface": AdaFaceHead,
}


class FaceTrainNetwork(nn.Module):
    """Twin of ``src.train.train_network.FaceTrainNetwork``: (image, label) -> (loss, accuracy)."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, image, label):
        logits, cos = self.head(self.backbone(image), label)
        return F.cross_entropy(logits, label), (cos.argmax(dim=1) == label).float().mean()


def build_optimizer(params, lr, momentum, weight_decay):
    """Twin of ``src.train.optimizer.build_optimizer``: decay only on parameters with ndim > 1."""
    params = [p for p in params if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return torch.optim.SGD([g for g in groups if g["params"]], lr=lr, momentum=momentum)


# --- one state_dict for both frameworks ---------------------------------------------------------------------
def state_arrays(module):
    """{name: float32 ndarray} of a module's parameters and buffers (``num_batches_tracked`` dropped)."""
    return {
        name: value.detach().float().numpy().copy()
        for name, value in module.state_dict().items()
        if not name.endswith("num_batches_tracked")
    }
