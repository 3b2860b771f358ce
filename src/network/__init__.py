"""Backbones: ``build_backbone(name, **kw)`` returns an ``nn.Cell`` mapping NCHW images to embeddings."""

from __future__ import annotations

import inspect
from typing import Any

from mindspore import nn

from src.model_utils.config import Config, ConfigError
from src.network import iresnet, mobilefacenet, sphere  # noqa: F401  (each registers its backbones)
from src.network.batchnorm import resolve_batchnorm_kernel
from src.network.conv import build_conv_library, resolve_conv_kernel
from src.network.cpu_kernels import kernel_builds
from src.network.depthwise import build_depthwise_library, resolve_depthwise_kernel
from src.network.prelu import resolve_prelu_kernel
from src.network.registry import BACKBONES


def takes(name: str, argument: str) -> bool:
    """Whether backbone ``name``'s factory takes ``argument`` (``depthwise_kernel``: it has depthwise convolutions;
    ``conv_kernel``: its dense convolutions can run through src/network/conv.py; ``batchnorm_kernel``: it has
    BatchNorm2d layers, which can run through src/network/batchnorm.py)."""
    return argument in inspect.signature(BACKBONES.get(name)).parameters


def has_depthwise_layers(name: str) -> bool:
    """Whether backbone ``name`` has depthwise convolutions (takes a ``depthwise_kernel``)."""
    return takes(name, "depthwise_kernel")


def kernel_convolutions(cfg: Config) -> bool:
    """Whether every convolution of the backbone ``cfg`` builds will run through the project's CPU kernels: on
    the CPU, ``conv_kernel`` (and ``depthwise_kernel``, for a backbone that has depthwise layers) resolving to
    cpu_aot. Then no convolution of the run reaches MindSpore's NCHW oneDNN path, and ``cpu_isa: auto`` leaves
    oneDNN uncapped (src/model_utils/cpu_isa.py). Compiles the kernels' libraries if needed, loads nothing: call
    it before ``init_device``."""
    if cfg.device_target != "CPU" or not takes(cfg.backbone, "conv_kernel"):
        return False
    if not kernel_builds(cfg.conv_kernel, build_conv_library):
        return False
    return not has_depthwise_layers(cfg.backbone) or kernel_builds(cfg.depthwise_kernel, build_depthwise_library)


def build_backbone(
    name: str,
    prelu_kernel: str = "native",
    depthwise_kernel: str = "native",
    conv_kernel: str = "native",
    batchnorm_kernel: str = "native",
    **kwargs: Any,
) -> nn.Cell:
    """Build a registered backbone, e.g. ``build_backbone("sphere20a", embedding_size=512, image_size=(112, 96))``;
    its PReLUs use ``prelu_kernel`` ("native", "cpu_aot" or "elementwise", see src/network/prelu.py), its
    depthwise convolutions, if it has any, ``depthwise_kernel`` ("native" or "cpu_aot", see depthwise.py) and its
    dense convolutions, if the backbone takes it, ``conv_kernel`` ("native" or "cpu_aot", see conv.py) and its
    BatchNorm2d layers, if it has any, ``batchnorm_kernel`` ("native" or "cpu_aot", see batchnorm.py)."""
    for argument, kernel in (
        ("depthwise_kernel", depthwise_kernel),
        ("conv_kernel", conv_kernel),
        ("batchnorm_kernel", batchnorm_kernel),
    ):
        if takes(name, argument):
            kwargs[argument] = kernel
    return BACKBONES.build(name, prelu_kernel=prelu_kernel, **kwargs)


def build_backbone_from_config(
    cfg: Config,
    prelu_kernel: str | None = None,
    depthwise_kernel: str | None = None,
    conv_kernel: str | None = None,
    batchnorm_kernel: str | None = None,
) -> nn.Cell:
    """The backbone named by ``cfg.backbone`` for ``cfg.image_size`` and ``cfg.embedding_size``; ``backbone_width``
    is passed only when it differs from 1.0 and ``embedding_bn`` only when true (only the sphere networks take
    them: set for another backbone, ``ConfigError`` names the key). The PReLU kernel is ``prelu_kernel`` if given,
    else ``cfg.prelu_kernel`` resolved for ``cfg.device_target``; the depthwise and dense convolution and the
    BatchNorm2d kernels likewise (resolved only for a backbone that takes them)."""
    kwargs = {"embedding_size": cfg.embedding_size, "image_size": tuple(cfg.image_size)}
    accepted = inspect.signature(BACKBONES.get(cfg.backbone)).parameters
    for key, argument, value, unset in (
        ("backbone_width", "width", cfg.backbone_width, 1.0),
        ("embedding_bn", "embedding_bn", cfg.embedding_bn, False),
    ):
        if value == unset:
            continue
        if argument not in accepted:
            raise ConfigError(
                f"config key '{key}' does not apply to backbone '{cfg.backbone}' (only the sphere backbones take it)"
            )
        kwargs[argument] = value
    prelu_kernel = prelu_kernel or resolve_prelu_kernel(cfg.prelu_kernel, cfg.device_target)
    if has_depthwise_layers(cfg.backbone):
        depthwise_kernel = depthwise_kernel or resolve_depthwise_kernel(cfg.depthwise_kernel, cfg.device_target)
    if takes(cfg.backbone, "conv_kernel"):
        conv_kernel = conv_kernel or resolve_conv_kernel(cfg.conv_kernel, cfg.device_target)
    if takes(cfg.backbone, "batchnorm_kernel"):
        batchnorm_kernel = batchnorm_kernel or resolve_batchnorm_kernel(cfg.batchnorm_kernel, cfg.device_target)
    return build_backbone(
        cfg.backbone,
        prelu_kernel=prelu_kernel,
        depthwise_kernel=depthwise_kernel or "native",
        conv_kernel=conv_kernel or "native",
        batchnorm_kernel=batchnorm_kernel or "native",
        **kwargs,
    )
