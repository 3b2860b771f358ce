"""Identity-folder trees (``root/<identity>/<image>``): scanning, selecting identities and labelling them.

Classes are the identity folder names in sorted order, images sorted within each class, so the same tree always
gives the same labels. Files directly under ``root`` and folders without images are not classes.
"""

import os

from src.data.samples import Sample, TrainingList
from src.data.text_lines import text_lines

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def scan_identity_tree(root, names=None):
    """{identity: [relpath, ...]} for the identity folders of ``root`` (only ``names`` when given)."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"identity folder not found: {root}")
    tree = {}
    for identity in sorted(os.listdir(root) if names is None else names):
        folder = os.path.join(root, identity)
        if not os.path.isdir(folder):
            continue
        images = sorted(name for name in os.listdir(folder) if name.lower().endswith(IMAGE_EXTENSIONS))
        if images:
            tree[identity] = [f"{identity}/{name}" for name in images]
    return tree


def select_identities(tree, min_images=1, has_landmarks=None):
    """Keep images with landmarks (when ``has_landmarks`` is given) and then identities with >= min_images.

    Returns (selected tree, relpaths dropped for lack of landmarks).
    """
    dropped = []
    selected = {}
    for identity, relpaths in tree.items():
        if has_landmarks is not None:
            dropped += [p for p in relpaths if not has_landmarks(p)]
            relpaths = [p for p in relpaths if has_landmarks(p)]
        if len(relpaths) >= min_images:
            selected[identity] = relpaths
    return selected, dropped


def tree_training_list(root, tree, landmarks=None):
    """Label the identities of ``tree`` 0..C-1 in sorted order; ``landmarks`` maps relpath -> 5x2 points."""
    samples = []
    names = sorted(tree)
    for label, identity in enumerate(names):
        for relpath in tree[identity]:
            points = None if landmarks is None else landmarks[relpath]
            samples.append(Sample(os.path.join(root, relpath), label, points))
    return TrainingList(samples, names)


def read_people(path):
    """Identity names from an LFW people file (``name<TAB>count`` lines, optionally preceded by a count line,
    or View 2's per-fold blocks) or a plain one-name-per-line file."""
    first_fields = (text.split()[0] for _, text in text_lines(path))
    return [field for field in first_fields if not field.isdigit()]
