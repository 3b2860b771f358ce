"""Building blocks the backbones share: the feature-map arithmetic, convolutions with symmetric zero padding, and
BatchNorm with PyTorch's defaults. Plain MindSpore layers only: what every device runs."""

import math

from mindspore import nn

BN_EPS = 1e-5
BN_MOMENTUM = 0.9  # MindSpore's convention; equals PyTorch's momentum 0.1.
BN_SETTINGS = {
    "eps": BN_EPS,
    "momentum": BN_MOMENTUM,
    "gamma_init": "ones",
    "beta_init": "zeros",
    "moving_mean_init": "zeros",
    "moving_var_init": "ones",
}


def feature_map_size(image_size, num_stages=4):
    """Spatial size after ``num_stages`` stride-2 3x3 convolutions with padding 1: ceil(n / 2) each."""
    height, width = image_size
    for _ in range(num_stages):
        height, width = math.ceil(height / 2), math.ceil(width / 2)
    return height, width


def conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, group=1, **init):
    """``nn.Conv2d`` with symmetric zero ``padding`` (an int or (height, width)); ``init``: has_bias, weight_init,
    bias_init as nn.Conv2d takes them."""
    if not isinstance(padding, int):
        padding = (padding[0], padding[0], padding[1], padding[1])
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad", padding=padding, group=group, **init
    )


def batch_norm(channels):
    """BatchNorm2d with PyTorch's defaults (eps 1e-5, momentum 0.1) and explicit initialisation."""
    return nn.BatchNorm2d(channels, **BN_SETTINGS)


def embedding_batch_norm(size):
    """BatchNorm1d on the embedding with its scale fixed at 1 (insightface's ``features`` layer): it centres and
    scales each embedding dimension by the batch statistics and a learned shift only."""
    bn = nn.BatchNorm1d(size, **BN_SETTINGS)
    bn.gamma.requires_grad = False
    return bn
