"""Backbones: ``build_backbone(name, **kw)`` returns an ``nn.Cell`` mapping NCHW images to embeddings."""
from src.network import iresnet, mobilefacenet, sphere  # noqa: F401  (each registers its backbones)
from src.network.prelu import resolve_prelu_kernel
from src.network.registry import BACKBONES


def build_backbone(name, prelu_kernel="native", **kwargs):
    """Build a registered backbone, e.g. ``build_backbone("sphere20a", embedding_size=512, image_size=(112, 96))``;
    its PReLUs use ``prelu_kernel`` ("native" or "cpu_aot", see src/network/prelu.py)."""
    return BACKBONES.build(name, prelu_kernel=prelu_kernel, **kwargs)


def build_backbone_from_config(cfg, prelu_kernel=None):
    """The backbone named by ``cfg.backbone`` for ``cfg.image_size`` and ``cfg.embedding_size``; ``backbone_width``
    is passed only when it differs from 1.0 (only the sphere networks take it). The PReLU kernel is
    ``prelu_kernel`` if given, else ``cfg.prelu_kernel`` resolved for ``cfg.device_target``."""
    kwargs = {"embedding_size": cfg.embedding_size, "image_size": tuple(cfg.image_size)}
    if cfg.backbone_width != 1.0:
        kwargs["width"] = cfg.backbone_width
    kernel = prelu_kernel or resolve_prelu_kernel(cfg.prelu_kernel, cfg.device_target)
    return build_backbone(cfg.backbone, prelu_kernel=kernel, **kwargs)
