"""Five-point landmark files: ``relpath x1 y1 ... x5 y5`` per line (tabs or spaces), the SphereFace
``lfw_landmark.txt`` layout (left eye, right eye, nose, left and right mouth corner)."""
import os

import numpy as np


class LandmarkFormatError(ValueError):
    """A malformed landmark line or a missing entry; the message names the file and line or image."""


def read_landmarks(path):
    """{relpath: 5x2 float32 array}."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"landmark file not found: {path}")
    table = {}
    with open(path, "r", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 11:
                raise LandmarkFormatError(f"{path}:{number}: expected a path and 10 coordinates, "
                                          f"got {len(fields)} fields")
            try:
                table[fields[0]] = np.array(fields[1:], np.float32).reshape(5, 2)
            except ValueError as err:
                raise LandmarkFormatError(f"{path}:{number}: coordinates must be numbers") from err
    return table


def landmarks_for(table, relpath, source):
    """The landmarks of ``relpath`` or an error naming the landmark file ``source`` and the image."""
    if relpath not in table:
        raise LandmarkFormatError(f"{source}: no landmarks for image {relpath}")
    return table[relpath]
