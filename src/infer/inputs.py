"""What infer.py reads besides the photos: the images of a folder, and the landmarks of a ``--landmarks`` file by
an image's path."""

import os

from src.data.landmarks import LandmarkFormatError, read_landmarks

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def find_landmarks(table, source, path, folder=None):
    """The landmarks of ``path``: by its path relative to ``folder``, else by its trailing path components, longest
    first (``../lfw/images/Ann/Ann_0001.jpg`` finds ``Ann/Ann_0001.jpg``), down to its file name."""
    parts = os.path.normpath(path).split(os.sep)
    keys = [os.path.relpath(path, folder).replace(os.sep, "/")] if folder else []
    keys += ["/".join(parts[k:]) for k in range(len(parts))]
    for key in keys:
        if key in table:
            return table[key]
    raise LandmarkFormatError(f"{source}: no landmarks for image {path}")


def landmark_lookup(args, folder=None):
    """A function path -> 5x2 landmarks from ``--landmarks`` (None without it)."""
    if not args.landmarks:
        return None
    table = read_landmarks(args.landmarks)
    return lambda path: find_landmarks(table, args.landmarks, path, folder)


def list_images(folder):
    """Every image file under ``folder``, sorted."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder not found: {folder}")
    found = [
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS)
    ]
    if not found:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}")
    return sorted(found)
