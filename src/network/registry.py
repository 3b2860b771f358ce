"""The backbone registry: each backbone module registers its constructors here (``@BACKBONES.register``)."""

from src.registry import Registry

BACKBONES = Registry("backbone")
