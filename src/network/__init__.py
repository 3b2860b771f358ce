"""Backbones: ``build_backbone(name, **kw)`` returns an ``nn.Cell`` mapping NCHW images to embeddings."""
from src.registry import Registry

BACKBONES = Registry("backbone")


def build_backbone(name, **kwargs):
    """Build a registered backbone, e.g. ``build_backbone("sphere20a", embedding_size=512, image_size=(112, 96))``."""
    return BACKBONES.build(name, **kwargs)


# The modules register themselves on import.
from src.network import sphere, mobilefacenet, iresnet  # noqa: E402,F401


def build_backbone_from_config(cfg):
    """The backbone named by ``cfg.backbone`` for ``cfg.image_size`` and ``cfg.embedding_size``; ``backbone_width``
    is passed only when it differs from 1.0 (only the sphere networks take it)."""
    kwargs = {"embedding_size": cfg.embedding_size, "image_size": tuple(cfg.image_size)}
    if cfg.backbone_width != 1.0:
        kwargs["width"] = cfg.backbone_width
    return build_backbone(cfg.backbone, **kwargs)
