"""Backbones: ``build_backbone(name, **kw)`` returns an ``nn.Cell`` mapping NCHW images to embeddings."""
from src.registry import Registry

BACKBONES = Registry("backbone")


def build_backbone(name, **kwargs):
    """Build a registered backbone, e.g. ``build_backbone("sphere20a", embedding_size=512, image_size=(112, 96))``."""
    return BACKBONES.build(name, **kwargs)


# The modules register themselves on import.
from src.network import sphere, mobilefacenet, iresnet  # noqa: E402,F401
