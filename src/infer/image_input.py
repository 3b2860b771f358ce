"""What the inference API takes as an image: a file path, or an RGB array (grey and RGBA arrays converted)."""

import os

import numpy as np

from src.data.image_io import load_rgb


def is_path(image):
    return isinstance(image, (str, bytes)) or hasattr(image, "__fspath__")


def as_rgb(image):
    """A path or an array -> HxWx3 uint8 RGB (grey HxW and RGBA HxWx4 arrays converted)."""
    if is_path(image):
        return load_rgb(image)
    image = np.asarray(image)
    if image.dtype == np.uint8 and image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got shape {image.shape} dtype {image.dtype}")
    return image


def image_name(image, fallback="an image array"):
    """How messages name an image: its path, else ``fallback``."""
    return os.fspath(image) if is_path(image) else fallback
