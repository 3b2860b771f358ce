"""The images of a pair set as network-ready faces: decoded (RGB) and aligned with the training alignment.

Raw images with a 5-point landmark file are aligned to the template (``src.data.alignment``), as in training.
Images that are already aligned (a folder, a ``.bin`` set) but of another size than the network input are fitted:
``template`` maps the template of their size onto the template of the input size (112x112 ArcFace crops ->
112x96 is the centre 96 columns), ``resize`` rescales them as the training reader does.
"""

import logging
import os
import time

import numpy as np

from src.data.alignment import AlignmentError, align_face, fit_aligned
from src.data.image_io import ImageDecodeError, decode_rgb, load_rgb
from src.data.landmarks import LandmarkFormatError, read_landmarks

LOG = logging.getLogger("facerec.eval")


class PairImageError(IOError):
    """An image of a pair set is missing or unreadable; the message names the pairs file and line."""


def _decode(pair_set, index):
    try:
        if pair_set.encoded is not None:
            return decode_rgb(pair_set.encoded[index], pair_set.relpaths[index])
        return load_rgb(os.path.join(pair_set.root, pair_set.relpaths[index]))
    except ImageDecodeError as err:
        raise PairImageError(f"{pair_set.where[index]}: {err}") from err


def load_pair_images(pair_set, image_size, landmark_path=None, fit="template", log_every=2000):
    """Decode every image of ``pair_set`` and align it (landmarks) or fit it to ``image_size``.

    Returns an N x H x W x 3 uint8 RGB array in ``pair_set.relpaths`` order. A missing or undecodable image raises
    ``PairImageError`` naming the pairs file and line; an image without landmarks raises ``LandmarkFormatError``
    naming the landmark file, the image and the pairs line; landmarks no similarity fits raise ``AlignmentError``
    naming the same.
    """
    table = read_landmarks(landmark_path) if landmark_path else None
    height, width = image_size
    images = np.empty((len(pair_set.relpaths), height, width, 3), np.uint8)
    start = time.time()
    first_shape = _decode(pair_set, 0).shape[:2] if pair_set.encoded is not None else None
    for index, relpath in enumerate(pair_set.relpaths):
        if table is not None and relpath not in table:
            raise LandmarkFormatError(
                f"{landmark_path}: no landmarks for image {relpath} (used at {pair_set.where[index]})"
            )
        image = _decode(pair_set, index)
        if first_shape is not None and image.shape[:2] != first_shape:
            raise PairImageError(
                f"{pair_set.where[index]}: a {image.shape[0]}x{image.shape[1]} image in a set of "
                f"{first_shape[0]}x{first_shape[1]} images (image #0): the images of a .bin must "
                f"all have one size"
            )
        if table is not None:
            try:
                images[index] = align_face(image, table[relpath], image_size)
            except AlignmentError as err:
                raise AlignmentError(
                    f"{landmark_path}: image {relpath} (used at {pair_set.where[index]}): {err}"
                ) from err
        else:
            images[index] = fit_aligned(image, image_size, fit)
        if (index + 1) % log_every == 0 or index + 1 == len(images):
            LOG.info(
                "prepared %d/%d images, %.0f img/s",
                index + 1,
                len(images),
                (index + 1) / max(time.time() - start, 1e-9),
            )
    return images
