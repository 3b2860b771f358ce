"""Backbones: ``build_backbone(name, **kw)`` returns an ``nn.Cell`` of plain MindSpore layers mapping NCHW images to
embeddings (the CPU kernels of src/kernels are applied to it afterwards, where they run)."""

from __future__ import annotations

import inspect
from typing import Any

from mindspore import nn

from src.model_utils.config import Config, ConfigError
from src.network import iresnet, mobilefacenet, sphere  # noqa: F401  (each registers its backbones)
from src.network.registry import BACKBONES


def build_backbone(name: str, **kwargs: Any) -> nn.Cell:
    """Build a registered backbone, e.g. ``build_backbone("sphere20a", embedding_size=512, image_size=(112, 96))``."""
    return BACKBONES.build(name, **kwargs)


def build_backbone_from_config(cfg: Config) -> nn.Cell:
    """The backbone named by ``cfg.backbone`` for ``cfg.image_size`` and ``cfg.embedding_size``; ``backbone_width``
    is passed only when it differs from 1.0 and ``embedding_bn`` only when true (only the sphere networks take
    them: set for another backbone, ``ConfigError`` names the key)."""
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
    return build_backbone(cfg.backbone, **kwargs)
