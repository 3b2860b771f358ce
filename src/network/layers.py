"""Building blocks the backbones share: the feature-map arithmetic and BatchNorm with PyTorch's defaults."""

import math

from mindspore import nn

from src.network.batchnorm import batch_norm_class

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


def batch_norm(channels, kernel="native"):
    """BatchNorm2d with PyTorch's defaults (eps 1e-5, momentum 0.1) and explicit initialisation, through ``kernel``
    ("native": nn.BatchNorm2d, "cpu_aot": src/network/batchnorm.py's CpuBatchNorm2d)."""
    return batch_norm_class(kernel)(channels, **BN_SETTINGS)


def embedding_batch_norm(size):
    """BatchNorm1d on the embedding with its scale fixed at 1 (insightface's ``features`` layer): it centres and
    scales each embedding dimension by the batch statistics and a learned shift only."""
    bn = nn.BatchNorm1d(size, **BN_SETTINGS)
    bn.gamma.requires_grad = False
    return bn
