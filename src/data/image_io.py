"""The one definition of how an image becomes a network input, shared by training, evaluation, export and
the predictor: RGB channel order, (x - 127.5) / 128, CHW float32."""

import cv2
import numpy as np

CHANNEL_ORDER = "RGB"
MEAN = 127.5
SCALE = 1.0 / 128.0
# How an exported network's input is made, as the sidecar JSON of every export states it.
INPUT_RECORD = {
    "input_layout": "NCHW",
    "input_dtype": "float32",
    "channel_order": CHANNEL_ORDER,
    "mean": MEAN,
    "scale": SCALE,
    "normalisation": "(x - mean) * scale",
}


class ImageDecodeError(IOError):
    """An image file is missing or cannot be decoded; the message names the file."""


def decode_rgb(data, path="<bytes>"):
    """Encoded image bytes -> HxWx3 uint8 RGB (grey and RGBA images too: grey is repeated, alpha dropped)."""
    if not len(data):
        raise ImageDecodeError(f"cannot decode image: {path}: the file is empty (0 bytes)")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as err:
        raise ImageDecodeError(f"cannot decode image: {path}: {err.err}") from err
    if image is None:
        raise ImageDecodeError(f"cannot decode image: {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_rgb(path):
    """Read an image file -> HxWx3 uint8 RGB."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ImageDecodeError(f"cannot read image: {path}: {err.strerror}") from err
    return decode_rgb(data, path)


def resize_to(image, image_size):
    """Resize HxWx3 to ``image_size`` (height, width) unless it already has that size."""
    height, width = image_size
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def to_input(image):
    """HxWx3 uint8 RGB (or a batch NxHxWx3) -> float32 (x - MEAN) * SCALE in CHW (NCHW) layout."""
    x = (image.astype(np.float32) - MEAN) * SCALE
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))
