"""The images of a pair set as network-ready faces: decoded (RGB) and aligned with the training alignment.

Raw images with a 5-point landmark file are aligned to the template (``src.data.alignment``), as in training.
Images that are already aligned (a folder, a ``.bin`` set) but of another size than the network input are fitted:
``template`` maps the template of their size onto the template of the input size (112x112 ArcFace crops ->
112x96 is the centre 96 columns), ``resize`` rescales them as the training reader does.

Images the landmark file has no entry for (the detector found no face in them) leave the evaluation with their
pairs, each named in a warning, and are recorded in ``pair_set.without_landmarks`` (the JSON's
``images_without_landmarks``), as missing images are. Without landmarks, images much larger than the input
(LARGE_INPUT x on a side: raw photos, such as LFW's 250x250 or 150x150) get one warning offering detection: they
are fitted as if aligned, so the accuracy is not that of aligned faces. It is a warning, not a refusal, because
aligned crops larger than the input (128x128, 144x144 for a 112x96 network) are fitted correctly by the same rule.
"""

import logging
import os
import time

import numpy as np

from src.data.alignment import AlignmentError, align_face, fit_aligned
from src.data.image_io import ImageDecodeError, decode_rgb, load_rgb
from src.data.landmarks import read_landmarks
from src.eval.pairs import drop_images

LOG = logging.getLogger("facerec.eval")
LARGE_INPUT = 1.5


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

    Returns an N x H x W x 3 uint8 RGB array in ``pair_set.relpaths`` order. The pairs of images without landmarks
    are first dropped from ``pair_set`` (in place, see the module). A missing or undecodable image raises
    ``PairImageError`` naming the pairs file and line; landmarks no similarity fits raise ``AlignmentError``
    naming the landmark file, the image and the pairs line.
    """
    table = read_landmarks(landmark_path) if landmark_path else None
    if table is not None:
        drop_without_landmarks(pair_set, table, landmark_path)
    height, width = image_size
    images = np.empty((len(pair_set.relpaths), height, width, 3), np.uint8)
    large = []
    start = time.time()
    first_shape = _decode(pair_set, 0).shape[:2] if pair_set.encoded is not None else None
    for index, relpath in enumerate(pair_set.relpaths):
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
            if max(image.shape[0] / height, image.shape[1] / width) > LARGE_INPUT:
                large.append((index, image.shape))
            images[index] = fit_aligned(image, image_size, fit)
        if (index + 1) % log_every == 0 or index + 1 == len(images):
            LOG.info(
                "prepared %d/%d images, %.0f img/s",
                index + 1,
                len(images),
                (index + 1) / max(time.time() - start, 1e-9),
            )
    if large:
        warn_large(pair_set, large, image_size)
    return images


def drop_without_landmarks(pair_set, table, landmark_path):
    """Leave out the pairs of the images ``table`` has no landmarks for, naming each; ``pair_set`` is updated in
    place (its ``without_landmarks`` lists them)."""
    usable = np.array([relpath in table for relpath in pair_set.relpaths], bool)
    lacking = [(relpath, where) for relpath, where, ok in zip(pair_set.relpaths, pair_set.where, usable) if not ok]
    for relpath, where in lacking:
        LOG.warning("%s: no landmarks for image %s (used at %s): its pairs are skipped", landmark_path, relpath, where)
    if lacking:
        pairs = len(pair_set)
        vars(pair_set).update(vars(drop_images(pair_set, usable)))
        LOG.warning(
            "%s: %d images without landmarks (the detector found no face?), %d of %d pairs skipped; recorded as "
            "images_without_landmarks",
            landmark_path,
            len(lacking),
            pairs - len(pair_set),
            pairs,
        )
    pair_set.without_landmarks = [relpath for relpath, _ in lacking]


def warn_large(pair_set, large, image_size):
    """One warning for the images, given without landmarks, that are much larger than the input: raw photos?"""
    height, width = image_size
    index, shape = large[0]
    LOG.warning(
        "%s: %d of %d images are more than %gx the %dx%d input on a side (e.g. %s: %s is %dx%d) and there are no "
        "landmarks: they are fitted as aligned faces, so the accuracy is not that of aligned faces. Raw photos "
        "need landmarks: python tools/detect_landmarks.py --root ROOT --output landmarks.txt, then "
        "--eval_landmarks landmarks.txt (or landmarks: in val_targets)",
        pair_set.source,
        len(large),
        len(pair_set.relpaths),
        LARGE_INPUT,
        width,
        height,
        pair_set.where[index],
        pair_set.relpaths[index],
        shape[1],
        shape[0],
    )
